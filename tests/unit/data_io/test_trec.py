"""TREC / CSV / Parquet qrels and runs (shelflab.data_io.trec)."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest
import pytrec_eval

from shelflab.contract import Keys
from shelflab.data_io.trec import (
    read_qrels,
    read_run,
    read_run_checked,
    write_qrels_trec,
    write_run_trec,
)
from shelflab.errors import ConfigError, InputError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- qrels -------------------------------------------------------------------------------------


def test_read_trec_qrels_with_float_grades_and_string_ids(tmp_path):
    p = write(tmp_path / "qrels.txt", "007 0 0042 2\n007\t0  abc   1.33\n\n8 Q0 x 0\n")
    df = read_qrels(p)
    assert df.schema == pl.Schema(
        {"query_id": pl.String, "item_id": pl.String, "grade": pl.Float64}
    )
    assert df.rows() == [("007", "0042", 2.0), ("007", "abc", 1.33), ("8", "x", 0.0)]


@pytest.mark.parametrize("name", ["qrels", "qrels.qrels", "q.tsv", "robust04.qrels.gz"])
def test_trec_by_extension(tmp_path, name):
    path = tmp_path / name
    data = b"q1 0 d1 1\n"
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert read_qrels(path).rows() == [("q1", "d1", 1.0)]


def test_exact_duplicate_judgments_are_collapsed(tmp_path):
    p = write(tmp_path / "q.qrels", "q1 0 d1 1\nq1 0 d1 1\n")
    assert read_qrels(p).height == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 0 d1 1\nq1 0 d1\n", r"q\.qrels, row 2: 3 field\(s\): 'q1 0 d1' \(expected 4 "),
        ("q1 0 d1 1 extra\n", r"row 1: 5 field\(s\).*query_id iteration item_id grade"),
        ("q1 0 d1 1\n\nq1 0 d2 high\n", r"row 3: non-numeric grade 'high'"),
        ("q1 0 d1 nan\n", r"row 1: non-finite grade 'nan'"),
        ("q1 0 d1 inf\n", r"row 1: non-finite grade 'inf'"),
        ("q1 0 d1 1\nq1 0 d1 2\n", r"conflicting grades \[1.0, 2.0\] .*'q1'.*'d1' \(rows 1, 2\)"),
        ("\n  \n", "no data rows"),
    ],
)
def test_trec_qrels_errors(tmp_path, text, message):
    p = write(tmp_path / "q.qrels", text)
    with pytest.raises(InputError, match=message):
        read_qrels(p)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.qrels: file not found"):
        read_qrels(tmp_path / "nope.qrels")
    with pytest.raises(InputError, match="file not found"):
        read_run(tmp_path / "nope.parquet")


def test_unsupported_extension(tmp_path):
    p = write(tmp_path / "q.json", "{}")
    with pytest.raises(InputError, match=r"unsupported file type \.json"):
        read_qrels(p)


def test_not_utf8(tmp_path):
    p = tmp_path / "q.qrels"
    p.write_bytes(b"q1 0 d1 1\nq\xe9 0 d1 1\n")
    with pytest.raises(InputError, match="row 2: not UTF-8"):
        read_qrels(p)


def test_csv_and_parquet_qrels(tmp_path):
    write(tmp_path / "q.csv", "query_id,item_id,grade\n007,01,2\nq2,x,0.5\n")
    assert read_qrels(tmp_path / "q.csv").rows() == [("007", "01", 2.0), ("q2", "x", 0.5)]
    pl.DataFrame({"query_id": [7], "item_id": [1], "grade": [1]}).write_parquet(
        tmp_path / "q.parquet"
    )
    assert read_qrels(tmp_path / "q.parquet").rows() == [("7", "1", 1.0)]


def test_csv_errors_give_file_rows(tmp_path):
    # header is row 1, so the bad grade on the second data line is row 3
    write(tmp_path / "q.csv", "query_id,item_id,grade\nq1,a,1\nq1,b,lots\n")
    with pytest.raises(InputError, match=r"q\.csv, row 3: column 'grade' has 'lots'"):
        read_qrels(tmp_path / "q.csv")
    write(tmp_path / "m.csv", "query_id,item,grade\nq1,a,1\n")
    with pytest.raises(InputError, match=r"missing column.*item_id"):
        read_qrels(tmp_path / "m.csv")


def test_unreadable_parquet(tmp_path):
    write(tmp_path / "bad.parquet", "not parquet")
    with pytest.raises(InputError, match="cannot parse as parquet"):
        read_qrels(tmp_path / "bad.parquet")


# --- runs --------------------------------------------------------------------------------------


RUN_TEXT = "q1 Q0 d1 1 2.5 bm25\nq1 Q0 d2 2 1.5 bm25\nq2 Q0 d1 1 -0.25 bm25\n"


def test_read_trec_run(tmp_path):
    df = read_run(write(tmp_path / "r.run", RUN_TEXT))
    assert df.schema == pl.Schema(
        {"query_id": pl.String, "item_id": pl.String, "score": pl.Float64, "rank": pl.Int64}
    )
    assert df.rows() == [("q1", "d1", 2.5, 1), ("q1", "d2", 1.5, 2), ("q2", "d1", -0.25, 1)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q1 Q0 d1 1 2.5\n", r"r\.run, row 1: 5 field\(s\).*query_id Q0 item_id rank score tag"),
        ("q1 Q0 d1 1 2.5 t\nq1 Q0 d2 2 abc t\n", r"row 2: non-numeric score 'abc'"),
        ("q1 Q0 d1 1 NaN t\n", r"row 1: non-finite score 'NaN'"),
        ("q1 Q0 d1 1 -inf t\n", r"row 1: non-finite score '-inf'"),
        ("q1 Q0 d1 first 1 t\n", r"row 1: non-numeric rank 'first'"),
        (
            "q1 Q0 d1 1 2 t\nq2 Q0 d1 1 2 t\nq1 Q0 d1 2 1 t\n",
            r"row 3: item 'd1' appears more than once for query 'q1' \(rows 1, 3\)",
        ),
    ],
)
def test_trec_run_errors(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        read_run(write(tmp_path / "r.run", text))


def test_csv_run_without_rank_gets_one(tmp_path):
    write(tmp_path / "r.csv", "query_id,item_id,score\nq,a,1\nq,b,10\nq,c,9\nq,d,10\n")
    df = read_run(tmp_path / "r.csv").sort("rank")
    # numeric order (10 > 9), ties (b, d at 10) by item_id descending
    assert df["item_id"].to_list() == ["d", "b", "c", "a"]


def test_csv_run_errors(tmp_path):
    write(tmp_path / "r.csv", "query_id,item_id,score\nq,a,1\nq,b,x\n")
    with pytest.raises(InputError, match=r"r\.csv, row 3: non-numeric score 'x'"):
        read_run(tmp_path / "r.csv")
    write(tmp_path / "d.csv", "query_id,item_id,score,rank\nq,a,1,1\nq,a,2,2\n")
    with pytest.raises(
        InputError, match=r"d\.csv, row 2: duplicate \(query_id, item_id\) = \('q', 'a'\)"
    ):
        read_run(tmp_path / "d.csv")
    write(tmp_path / "n.csv", "query_id,item_id,score,rank\nq,a,nan,1\n")
    with pytest.raises(InputError, match=r"n\.csv, row 2: non-finite score NaN"):
        read_run(tmp_path / "n.csv")


def test_parquet_run(tmp_path):
    run = pl.DataFrame({"query_id": ["q"], "item_id": ["a"], "score": [0.5], "rank": [1]})
    run.write_parquet(tmp_path / "r.parquet")
    assert read_run(tmp_path / "r.parquet").equals(run)


# --- writing -----------------------------------------------------------------------------------


def test_write_run_round_trip_and_trec_eval_can_read_it(tmp_path):
    run = pl.DataFrame(
        {
            "query_id": ["q2", "q1", "q1", "q1"],
            "item_id": ["a", "1", "10", "9"],
            "score": [1 / 3, 0.1, 0.1, 1e-20],
            "rank": [9, 9, 9, 9],  # ignored: ranks come from the scores
        }
    )
    path = tmp_path / "out" / "bm25.run"
    write_run_trec(run, path, tag="bm25")
    lines = path.read_text().splitlines()
    # q1 tie between "1" and "10" -> item_id descending: "10" first
    assert lines == [
        "q1 Q0 10 1 0.1 bm25",
        "q1 Q0 1 2 0.1 bm25",
        "q1 Q0 9 3 1e-20 bm25",
        "q2 Q0 a 1 0.3333333333333333 bm25",
    ]
    back = read_run(path)
    assert back.sort(["query_id", "rank"])["score"].to_list() == [0.1, 0.1, 1e-20, 1 / 3]
    with path.open() as fh:
        assert pytrec_eval.parse_run(fh) == {
            "q1": {"10": 0.1, "1": 0.1, "9": 1e-20},
            "q2": {"a": 1 / 3},
        }
    assert [p.name for p in path.parent.iterdir()] == ["bm25.run"]  # no temp file left


def test_write_run_gz(tmp_path):
    run = pl.DataFrame({"query_id": ["q"], "item_id": ["a"], "score": [1.0]})
    write_run_trec(run, tmp_path / "r.run.gz")
    assert read_run(tmp_path / "r.run.gz").rows() == [("q", "a", 1.0, 1)]


def test_write_run_errors_leave_target_untouched(tmp_path):
    target = write(tmp_path / "r.run", "old\n")
    bad = pl.DataFrame({"query_id": ["q 1"], "item_id": ["a"], "score": [1.0]})
    with pytest.raises(InputError, match="query_id 'q 1' cannot be written to a TREC file"):
        write_run_trec(bad, target)
    nan = pl.DataFrame({"query_id": ["q"], "item_id": ["a"], "score": [float("nan")]})
    with pytest.raises(InputError, match="non-finite score"):
        write_run_trec(nan, target)
    with pytest.raises(ConfigError, match="run tag"):
        write_run_trec(nan, target, tag="my run")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.run"]


def test_write_qrels_round_trip(tmp_path):
    qrels = pl.DataFrame({"query_id": ["q", "q"], "item_id": ["b", "a"], "grade": [2.0, 1.33]})
    path = tmp_path / "x.qrels"
    write_qrels_trec(qrels, path)
    assert path.read_text() == "q 0 a 1.33\nq 0 b 2\n"
    assert read_qrels(path).sort("item_id").equals(qrels.sort("item_id"))


RUN_LINES = [
    "q1 Q0 d7 1 2.5 run",
    "q1 Q0 d3 2 1.25 run",
    'q2 Q0 "d9" 1 0.5 run',  # quotes are part of an id
    "q2 Q0 d1 2 -1e-3 run",
]


@pytest.mark.parametrize(
    "layout",
    [
        lambda lines: "\n".join(lines) + "\n",  # one space: polars' CSV reader
        lambda lines: "\n".join(lines),  # no final newline: the same reader
        lambda lines: "\n".join(x.replace(" ", "\t") for x in lines) + "\n",  # tabs: exact one
        lambda lines: "\n\n".join("  " + x.replace(" ", "   ") for x in lines) + "\n",
        lambda lines: "\r\n".join(lines) + "\r\n",
        lambda lines: " \n".join(lines) + " \n",  # trailing spaces: polars sees 7 fields
        lambda lines: "\n".join([*lines[:3], lines[3].replace("d1", "d\u00e91")]) + "\n",
    ],
)
def test_every_whitespace_layout_reads_the_same(tmp_path, layout):
    exact = tmp_path / "exact.run"
    exact.write_text("\n\n".join(RUN_LINES) + "\n")  # blank lines: always the exact reader
    other = tmp_path / "other.run"
    other.write_text(layout(RUN_LINES), encoding="utf-8")
    a, b = read_run(exact), read_run(other)
    if "\u00e9" in other.read_text(encoding="utf-8"):
        b = b.with_columns(pl.col("item_id").str.replace("\u00e9", ""))
    assert a.equals(b)
    assert a.filter(pl.col("query_id") == "q2")["item_id"].to_list() == ['"d9"', "d1"]


def test_fast_layout_still_names_the_bad_line(tmp_path):
    path = tmp_path / "bad.run"
    path.write_text("\n".join([*RUN_LINES[:2], "q1 Q0 d8 3 oops run", RUN_LINES[3]]) + "\n")
    with pytest.raises(InputError, match=r"row 3.*score"):
        read_run(path)
    path.write_text("\n".join([*RUN_LINES[:2], "q1 Q0 d8 3", RUN_LINES[3]]) + "\n")
    with pytest.raises(InputError, match=r"row 3: 4 field"):
        read_run(path)
    # a blank line (polars reads it as nulls) counts as a line: the bad one is row 4
    path.write_text("\n".join([*RUN_LINES[:2], "", "q1 Q0 d8 3 oops run"]) + "\n\n")
    with pytest.raises(InputError, match=r"row 4.*score"):
        read_run(path)


def test_blank_lines_anywhere_are_skipped(tmp_path):
    plain = tmp_path / "plain.run"
    plain.write_text("\n".join(RUN_LINES) + "\n")
    for text in ("\n" + "\n".join(RUN_LINES), "\n".join(RUN_LINES) + "\n\n\n",
                 "\n".join([*RUN_LINES[:2], "", *RUN_LINES[2:]])):  # fmt: skip
        blank = tmp_path / "blank.run"
        blank.write_text(text)
        assert read_run(blank).equals(read_run(plain))


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("q1 Q0 d8 1.5 0.5 run", r"row 3: non-numeric rank '1\.5'"),
        ("q1 Q0 d8 3 inf run", r"row 3: non-finite score 'inf'"),
        ("q1 Q0 d8 3 nan run", r"row 3: non-finite score 'nan'"),
        ("q1 Q0 d8 3 0.5 run extra", r"row 3: 7 field"),
        ("q1 Q0 d7 3 0.5 run", r"row 3: item 'd7' appears more than once for query 'q1'"),
    ],
)
def test_typed_fast_reader_hands_bad_values_to_the_exact_one(tmp_path, bad_line, message):
    path = tmp_path / "bad.run"
    path.write_text("\n".join([*RUN_LINES[:2], bad_line, RUN_LINES[3]]) + "\n")
    with pytest.raises(InputError, match=message):
        read_run(path)


@pytest.mark.parametrize("name", ["r.trec", "r.trec.gz", "r.csv"])
def test_a_byte_order_mark_is_not_part_of_the_first_id(tmp_path, name):
    """A UTF-8 BOM (Windows editors) used to become part of the first query id: q1 -> '\ufeffq1',
    which then scored 0."""
    body = "q1 Q0 a 1 2.0 t\nq1 Q0 b 2 1.0 t\n"
    if name.endswith(".csv"):
        body = "query_id,item_id,score,rank\nq1,a,2.0,1\nq1,b,1.0,2\n"
    data = "\ufeff".encode() + body.encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    assert read_run(path)["query_id"].to_list() == ["q1", "q1"]
    qrels = tmp_path / "j.qrels"
    qrels.write_bytes("\ufeff".encode() + b"q1 0 a 1\n")
    assert read_qrels(qrels)["query_id"].to_list() == ["q1"]


@pytest.mark.parametrize("name", ["r.run", "r.run.gz", "r.csv", "r.parquet"])
def test_read_run_checked_is_read_run_with_its_keys(tmp_path, name):
    source = read_run(write(tmp_path / "src.run", RUN_TEXT))
    path = tmp_path / name
    if name.endswith(".csv"):
        source.write_csv(path)
    elif name.endswith(".parquet"):
        source.write_parquet(path)
    else:
        write_run_trec(source, path)
    checked = read_run_checked(path)
    assert checked.frame.equals(read_run(path)) and checked.frame.equals(source)
    again = Keys.of(checked.frame)
    assert (checked.keys.pair == again.pair).all() and (checked.keys.query == again.query).all()


def test_read_run_checked_raises_what_read_run_raises(tmp_path):
    path = write(tmp_path / "d.run", "q1 Q0 d1 1 2 t\nq1 Q0 d2 2 1 t\nq1 Q0 d1 3 0 t\n")
    with pytest.raises(InputError, match=r"row 3: item 'd1' appears more than once .*rows 1, 3"):
        read_run_checked(path)
