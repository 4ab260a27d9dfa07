"""The CLI contract: fast --help, JSON output shape, one-line errors with exit 1, no partial
output. Runs the real `shelflab` console script."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
QRELS = "q1 0 a 2\nq1 0 b 1\nq1 0 c 0\nq2 0 d 1\n"
RUN = "q1 Q0 b 1 3.0 t\nq1 Q0 a 2 2.0 t\nq1 Q0 x 3 1.0 t\nq2 Q0 y 1 5.0 t\nq2 Q0 d 2 4.0 t\n"


def shelflab(*args, cwd):
    proc = subprocess.run(
        [str(BIN / "shelflab"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )
    return proc


@pytest.fixture
def files(tmp_path):
    (tmp_path / "j.qrels").write_text(QRELS)
    (tmp_path / "r.trec").write_text(RUN)
    return tmp_path


def test_help_is_fast(tmp_path):
    start = time.perf_counter()
    proc = shelflab("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "leaderboard" in proc.stdout
    assert time.perf_counter() - start < 3.0  # generous bound; ~0.1 s measured (see README)
    heavy = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import shelflab.cli.main"],
        capture_output=True,
        text=True,
    ).stderr
    for module in ("torch", "sentence_transformers", "mlflow", "chromadb", "polars"):
        assert f" {module}\n" not in heavy and f"| {module}\n" not in heavy


def test_evaluate_json_hand_worked(files):
    proc = shelflab(
        "evaluate",
        "--qrels",
        "j.qrels",
        "--run",
        "r.trec",
        "--metrics",
        "mrr,recall@2,precision@2",
        "--format",
        "json",
        cwd=files,
    )
    assert proc.returncode == 0, proc.stderr
    # q1: relevant {a(2), b(1)}: b at 1 -> rr 1, recall@2 = 2/2, P@2 = 1
    # q2: relevant {d}: d at 2 -> rr 1/2, recall@2 = 1, P@2 = 1/2
    out = json.loads(proc.stdout)
    assert out["metrics"] == pytest.approx({"mrr": 0.75, "recall@2": 1.0, "precision@2": 0.75})
    assert out["queries"] == {"evaluated": 2, "missing_from_run": 0, "without_relevant": 0,
                              "run_ignored": 0, "whitespace_mismatches": 0}  # fmt: skip


# q3 has no relevant item (excluded), q4 is judged but absent from the run (scored 0), the run's
# q9 is not judged (ignored), and its " q5" is the qrels' q5 with a leading space (CSV run)
COUNT_QRELS = QRELS + "q3 0 e 0\nq4 0 f 1\nq5 0 g 1\n"
COUNT_RUN = "query_id,item_id,score\nq1,b,3\nq1,a,2\nq2,d,4\nq9,a,1\n q5,g,1\n"


def test_evaluate_counts_what_it_scored(files):
    (files / "j.qrels").write_text(COUNT_QRELS)
    (files / "r.csv").write_text(COUNT_RUN)
    args = ["evaluate", "--qrels", "j.qrels", "--run", "r.csv", "--metrics", "recall@10"]
    proc = shelflab(*args, "--format", "json", cwd=files)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # q1 1.0, q2 1.0, q4 0 (missing), q5 0 (missing: " q5" is another id)
    assert out["metrics"] == pytest.approx({"recall@10": 0.5})
    assert out["queries"] == {"evaluated": 4, "missing_from_run": 2, "without_relevant": 1,
                              "run_ignored": 2, "whitespace_mismatches": 1}  # fmt: skip
    table = shelflab(*args, cwd=files)
    assert table.returncode == 0, table.stderr
    footer = table.stdout.strip().splitlines()[-2:]
    assert footer == [
        "queries: 4 evaluated, 2 missing from the run (scored 0), 1 without a relevant item "
        "(excluded), 2 run queries not in the qrels (ignored)",
        "warning: 2 qrels queries missing from the run (scored 0); 2 run queries not in the "
        "qrels (ignored); 1 differ only by surrounding whitespace, e.g. run ' q5' vs qrels 'q5' "
        "(--strict makes this an error)",
    ]
    strict = shelflab(*args, "--strict", "--per-query", "pq.csv", cwd=files)
    assert strict.returncode == 1 and strict.stdout == ""
    assert strict.stderr.strip().splitlines() == [
        "shelflab: error: r.csv: run and qrels disagree (--strict): 2 qrels queries missing "
        "from the run (scored 0); 2 run queries not in the qrels (ignored); 1 differ only by "
        "surrounding whitespace, e.g. run ' q5' vs qrels 'q5' (expected exactly the queries "
        "of j.qrels)"
    ]
    assert not (files / "pq.csv").exists()
    (files / "j.qrels").write_text(QRELS)
    clean = shelflab("evaluate", "--qrels", "j.qrels", "--run", "r.trec", "--strict", cwd=files)
    assert clean.returncode == 0 and "warning" not in clean.stdout


def test_metric_labels_are_case_insensitive_and_reported_canonically(files):
    args = ["--metrics", "MRR,Recall@2,mrr", "--format", "json", "--per-query", "pq.csv"]
    proc = shelflab("evaluate", "--qrels", "j.qrels", "--run", "r.trec", *args, cwd=files)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"] == pytest.approx({"mrr": 0.75, "recall@2": 1.0})
    assert (files / "pq.csv").read_text().splitlines()[0] == "query_id,mrr,recall@2"


def test_evaluate_per_query_file(files):
    proc = shelflab(
        "evaluate",
        "--qrels",
        "j.qrels",
        "--run",
        "r.trec",
        "--metrics",
        "mrr",
        "--per-query",
        "pq.csv",
        cwd=files,
    )
    assert proc.returncode == 0, proc.stderr
    lines = (files / "pq.csv").read_text().splitlines()
    assert lines == ["query_id,mrr", "q1,1.0", "q2,0.5"]


@pytest.mark.parametrize(
    ("run_text", "qrels_text", "needle"),
    [
        ("q1 Q0 a 1 nan t\n", QRELS, "non-finite"),
        (
            "q1 Q0 a 1 1.0 t\nq1 Q0 a 2 0.5 t\n",
            QRELS,
            "r.trec, row 2: item 'a' appears more than once",
        ),
        ("q1,Q0,a,1,1.0,t\n", QRELS, "r.trec"),
        ("q9 Q0 a 1 1.0 t\n", QRELS, "no query_id in common between r.trec"),
        (RUN, "q1 0 a 2\nq1 0 a 1\n", "conflicting grades"),
    ],
)
def test_evaluate_bad_input_one_line(files, run_text, qrels_text, needle):
    (files / "r.trec").write_text(run_text)
    (files / "j.qrels").write_text(qrels_text)
    proc = shelflab(
        "evaluate", "--qrels", "j.qrels", "--run", "r.trec", "--per-query", "pq.parquet", cwd=files
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shelflab: error:"), proc.stderr
    assert needle in lines[0]
    assert not (files / "pq.parquet").exists()


def test_missing_file_and_unknown_metric(files):
    proc = shelflab("evaluate", "--qrels", "nope.qrels", "--run", "r.trec", cwd=files)
    assert proc.returncode == 1 and "nope.qrels" in proc.stderr
    proc = shelflab(
        "evaluate", "--qrels", "j.qrels", "--run", "r.trec", "--metrics", "ndgc@10", cwd=files
    )
    assert proc.returncode == 1 and "unknown metric 'ndgc@10'" in proc.stderr


def test_retrieve_without_pipeline_is_clear(tmp_path):
    (tmp_path / "q.tsv").write_text("n1\tdrill\n")
    proc = shelflab(
        "retrieve", "--model", "bm25", "--queries", "q.tsv", "--out", "r.trec", cwd=tmp_path
    )
    assert proc.returncode == 1 and "dvc repro" in proc.stderr
    assert not (tmp_path / "r.trec").exists()
