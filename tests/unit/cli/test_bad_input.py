# ruff: noqa: E501  (the exact messages are the specification)
"""The bad-input suite of `shelflab evaluate` (in process, so it stays fast): every case is
one line on stderr naming the file, row or key and what was expected, exit status 1, nothing
on stdout and no --per-query file. The params.yaml cases are in tests/unit/test_config.py
(BAD_PARAMS), the output-path cases of the writers in tests/unit/test_atomic.py; stage scripts
are covered at the end of this file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shelflab.cli.main import main

QRELS = "q1 0 a 2\nq1 0 b 1\nq1 0 c 0\nq2 0 d 1\n"
RUN = "q1 Q0 b 1 3.0 t\nq1 Q0 a 2 2.0 t\nq2 Q0 d 1 4.0 t\n"

# (case, (files written over the defaults j.qrels + r.trec, argument overrides), message)
CASES = [
    ('run_five_fields', ({"r.trec": "q1 Q0 a 1 1.0\n"}, []), "r.trec, row 1: 5 field(s): 'q1 Q0 a 1 1.0' (expected 6 whitespace-separated fields: query_id Q0 item_id rank score tag (TREC run))"),
    ('run_score_text', ({"r.trec": "q1 Q0 a 1 high t\n"}, []), "r.trec, row 1: non-numeric score 'high' (expected a number)"),
    ('run_score_nan', ({"r.trec": "q1 Q0 a 1 nan t\n"}, []), "r.trec, row 1: non-finite score 'nan' (expected a number)"),
    ('run_score_inf', ({"r.trec": "q1 Q0 a 1 inf t\n"}, []), "r.trec, row 1: non-finite score 'inf' (expected a number)"),
    ('run_rank_text', ({"r.trec": "q1 Q0 a one 1.0 t\n"}, []), "r.trec, row 1: non-numeric rank 'one' (expected an integer rank)"),
    ('run_duplicate', ({"r.trec": "q1 Q0 a 1 1.0 t\nq1 Q0 a 2 0.5 t\n"}, []), "r.trec, row 2: item 'a' appears more than once for query 'q1' (rows 1, 2) (expected each item at most once per query)"),
    ('run_empty', ({"r.trec": ""}, []), 'r.trec: no data rows (expected 6 whitespace-separated fields: query_id Q0 item_id rank score tag (TREC run))'),
    ('run_blank_only', ({"r.trec": "\n\n"}, []), 'r.trec: no data rows (expected 6 whitespace-separated fields: query_id Q0 item_id rank score tag (TREC run))'),
    ('run_latin1', ({"r.trec": b"q1 Q0 caf\xe9 1 1.0 t\n"}, []), 'r.trec, row 1: not UTF-8 text (expected 6 whitespace-separated fields: query_id Q0 item_id rank score tag (TREC run))'),
    ('run_commas', ({"r.trec": "q1,Q0,a,1,1.0,t\n"}, []), "r.trec, row 1: 1 field(s): 'q1,Q0,a,1,1.0,t' (expected 6 whitespace-separated fields: query_id Q0 item_id rank score tag (TREC run))"),
    ('qrels_three_fields', ({"j.qrels": "q1 0 a\n"}, []), "j.qrels, row 1: 3 field(s): 'q1 0 a' (expected 4 whitespace-separated fields: query_id iteration item_id grade (TREC qrels))"),
    ('qrels_grade_text', ({"j.qrels": "q1 0 a good\n"}, []), "j.qrels, row 1: non-numeric grade 'good' (expected a number)"),
    ('qrels_grade_nan', ({"j.qrels": "q1 0 a nan\n"}, []), "j.qrels, row 1: non-finite grade 'nan' (expected a number)"),
    ('qrels_conflict', ({"j.qrels": "q1 0 a 2\nq1 0 a 1\n"}, []), "j.qrels, row 2: conflicting grades [2.0, 1.0] for query 'q1', item 'a' (rows 1, 2) (expected one grade per (query_id, item_id))"),
    ('qrels_empty', ({"j.qrels": ""}, []), 'j.qrels: no data rows (expected 4 whitespace-separated fields: query_id iteration item_id grade (TREC qrels))'),
    ('qrels_no_relevant', ({"j.qrels": "q1 0 a 0\nq2 0 d 0\n"}, []), 'j.qrels: no query has a relevant item (grade >= 1) (expected at least one judged item with grade >= the relevance threshold)'),
    ('no_common_query', ({"r.trec": "q9 Q0 a 1 1.0 t\n"}, []), 'no query_id in common between r.trec (1 queries) and j.qrels (2 queries) (expected the run to answer queries of the qrels)'),
    ('qrels_missing', ({}, ["--qrels", "nope.qrels"]), 'nope.qrels: file not found (expected an existing qrels/run file)'),
    ('run_missing', ({}, ["--run", "nope.trec"]), 'nope.trec: file not found (expected an existing qrels/run file)'),
    ('run_is_dir', ({"rdir/x": "x"}, ["--run", "rdir"]), 'rdir: is a directory (expected a qrels/run file)'),
    ('run_json', ({"r.json": "{}"}, ["--run", "r.json"]), 'r.json: unsupported file type .json (expected TREC text, .csv or .parquet)'),
    ('run_csv_no_score', ({"r.csv": "query_id,item_id\nq1,a\n"}, ["--run", "r.csv"]), 'r.csv: missing column(s) score, rank; found query_id, item_id (expected columns query_id, item_id, score, rank)'),
    ('run_csv_null_item', ({"r.csv": "query_id,item_id,score\nq1,,1.0\n"}, ["--run", "r.csv"]), "r.csv, row 2: empty 'item_id' (expected a non-empty item_id)"),
    ('run_csv_bad_score', ({"r.csv": "query_id,item_id,score\nq1,a,x\n"}, ["--run", "r.csv"]), "r.csv, row 2: non-numeric score 'x' (expected a number)"),
    ('run_parquet_garbage', ({"r.parquet": "not parquet"}, ["--run", "r.parquet"]), 'r.parquet: cannot parse as parquet: parquet: File out of specification: A Parquet file must contain a header and footer with at least 12 bytes'),
    ('run_gz_garbage', ({"r.trec.gz": "not gzip"}, ["--run", "r.trec.gz"]), "r.trec.gz: cannot read: Not a gzipped file (b'no')"),
    ('metric_unknown', ({}, ["--metrics", "ndgc@10"]), "unknown metric 'ndgc@10' (expected one of: ndcg, ndcg@K, ndcg_burges, ndcg_burges@K, precision@K, recall@K, hit@K, mrr, mrr@K, map, map@K, r-precision)"),
    ('metric_zero_cutoff', ({}, ["--metrics", "ndcg@0"]), "metric 'ndcg@0': cutoff must be a positive integer, e.g. ndcg@10"),
    ('metric_fullwidth', ({}, ["--metrics", "ndcg@１０"]), "metric 'ndcg@１０': cutoff must be a positive integer, e.g. ndcg@10"),
    ('metric_needs_cutoff', ({}, ["--metrics", "precision"]), "metric 'precision' needs a cutoff, e.g. precision@10"),
    ('metric_no_cutoff_allowed', ({}, ["--metrics", "r-precision@5"]), "metric 'r-precision' takes no cutoff (got 'r-precision@5')"),
    ('threshold_zero', ({}, ["--relevance-threshold", "0"]), 'relevance_threshold must be a finite number > 0 (grade 0 = not relevant), got 0.0'),
    ('threshold_nan', ({}, ["--relevance-threshold", "nan"]), 'relevance_threshold must be a finite number > 0 (grade 0 = not relevant), got nan'),
    ('per_query_dir', ({"pq/x": "x"}, ["--per-query", "pq"]), 'pq: unsupported output extension (expected .parquet, .csv or .tsv)'),
    ('per_query_under_file', ({"f": "x"}, ["--per-query", "f/pq.csv"]), 'f/pq.csv: a parent of this path is a file (expected a file path for the output)'),
    ('strict_missing', ({"j.qrels": QRELS + "q3 0 e 1\n"}, ["--strict"]), 'r.trec: run and qrels disagree (--strict): 1 qrels queries missing from the run (scored 0) (expected exactly the queries of j.qrels)'),
    ('strict_extra', ({"r.trec": RUN + "q7 Q0 a 1 1.0 t\n"}, ["--strict"]), 'r.trec: run and qrels disagree (--strict): 1 run queries not in the qrels (ignored) (expected exactly the queries of j.qrels)'),
]  # fmt: skip


def _args(overrides: list[str]) -> list[str]:
    args = ["evaluate", "--qrels", "j.qrels", "--run", "r.trec", "--per-query", "out.csv"]
    i = 0
    while i < len(overrides):
        flag = overrides[i]
        has_value = i + 1 < len(overrides) and not overrides[i + 1].startswith("--")
        if flag in args and has_value:
            args[args.index(flag) + 1] = overrides[i + 1]
        else:
            args += overrides[i : i + 2] if has_value else [flag]
        i += 2 if has_value else 1
    return args


@pytest.mark.parametrize(("case", "setup", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_1_nothing_written(
    case, setup, message, tmp_path, monkeypatch, capsys
):
    files, overrides = setup
    for name, text in {"j.qrels": QRELS, "r.trec": RUN, **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    monkeypatch.chdir(tmp_path)
    assert main(_args(overrides)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"shelflab: error: {message}"]
    assert not (tmp_path / "out.csv").exists()


REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("split", "fractons", [0.8, 0.1, 0.1]), "split.fractons: unknown key (expected one of: "
         "fractions, lockbox_fraction, lockbox_seed, seed)"),
        (("split", "seed", "abc"), "split.seed: Input should be a valid integer, got 'abc'"),
        (("data", "grade_maping", "identity"), "data.grade_maping: unknown key"),
    ],
)  # fmt: skip
def test_a_stage_with_a_params_typo_stops_before_any_work(tmp_path, edit, message):
    """Through the real stage script, as `dvc repro` runs it: one line, exit 1, no output."""
    section, key, value = edit
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params[section][key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [sys.executable, str(REPO / "stages" / "split.py")], cwd=tmp_path, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"split: error: {tmp_path / 'params.yaml'}: {message}"), line
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics" / "split.json").exists()
