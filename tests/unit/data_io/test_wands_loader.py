"""WANDS loader: the fixture in the published format, the real query.csv, bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from shelflab.data_io.wands import (
    R_BAD_LABEL,
    R_CONFLICT,
    R_DUP_LABEL,
    R_DUP_QUERY,
    R_EMPTY_QUERY,
    R_PRODUCT_QUARANTINED,
    R_UNKNOWN_PRODUCT,
    R_UNKNOWN_QUERY,
    load_wands,
    load_wands_dir,
    load_wands_queries,
)
from shelflab.errors import InputError
from shelflab.quarantine import Quarantine

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "wands"


def copy_fixture(tmp_path: Path) -> Path:
    d = tmp_path / "wands"
    shutil.copytree(FIXTURE, d)
    return d


def append(path: Path, *rows: list[str]) -> None:
    with path.open("a", encoding="utf-8", newline="") as f:
        for r in rows:
            f.write("\t".join(r) + "\n")


def q_rows(q: Quarantine, reason: str) -> list[int]:
    return sorted(q.table().filter(pl.col("reason") == reason)["row"].to_list())


def test_fixture_loads():
    q = Quarantine()
    ds = load_wands_dir(FIXTURE, quarantine=q)
    assert q.counts() == {}
    assert ds.summary() == {"items": 7, "queries": 5, "qrels": 12}
    ds.validate()
    assert ds.items.columns == [
        "item_id",
        "text",
        "product_class",
        "category_hierarchy",
        "product_description",
        "product_features",
        "rating_count",
        "average_rating",
        "review_count",
    ]
    row = ds.items.filter(pl.col("item_id") == "3").row(0, named=True)
    assert row["text"] == "emmeline 5 piece breakfast dining set"
    assert row["product_description"] is None  # empty in the file
    assert row["rating_count"] == 1314.0
    assert ds.items.filter(pl.col("item_id") == "5")["average_rating"][0] is None
    grades = dict(
        zip(
            ds.qrels.select(pl.concat_str("query_id", "item_id", separator=":"))
            .to_series()
            .to_list(),
            ds.qrels["grade"].to_list(),
            strict=True,
        )
    )
    assert grades["0:5"] == 2.0 and grades["0:4"] == 1.0 and grades["0:0"] == 0.0
    assert ds.queries.filter(pl.col("query_id") == "2")["query_class"][0] == "Kids Wall Décor"
    assert ds.stats["queries_without_labels"] == 0


def test_custom_label_grades():
    d = FIXTURE
    ds = load_wands(
        d / "product.csv",
        d / "query.csv",
        d / "label.csv",
        quarantine=Quarantine(),
        label_grades={"Exact": 1.0, "Partial": 0.5, "Irrelevant": 0.0},
    )
    assert sorted(ds.qrels["grade"].unique().to_list()) == [0.0, 0.5, 1.0]


def test_real_wands_queries(data_dir):
    qs = load_wands_queries(data_dir / "wands-partial" / "query.csv.gz")
    assert qs.height == 480
    assert qs.columns == ["query_id", "text", "query_class"]
    assert qs["query_id"].n_unique() == 480
    assert qs.row(0) == ("0", "salon chair", "Massage Chairs")
    assert qs.filter(pl.col("query_id") == "2")["query_class"][0] == "Kids Wall Décor"
    assert 'fawkes 36" blue vanity' in qs["text"].to_list()  # a bare quote inside a field
    assert qs["query_id"].cast(pl.Int64).max() == 487  # WANDS ids have gaps


def test_queries_without_quarantine_raise_on_bad_row(tmp_path):
    d = copy_fixture(tmp_path)
    append(d / "query.csv", ["9", "  ", "Beds"])
    with pytest.raises(InputError) as err:
        load_wands_queries(d / "query.csv")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{d / 'query.csv'}, row 7: {R_EMPTY_QUERY}")


def test_queries_with_quarantine(tmp_path):
    d = copy_fixture(tmp_path)
    append(d / "query.csv", ["9", "", "Beds"], ["0", "salon chair again", "Massage Chairs"])
    q = Quarantine()
    qs = load_wands_queries(d / "query.csv", quarantine=q)
    assert qs.height == 5
    assert q_rows(q, R_EMPTY_QUERY) == [7]
    assert q_rows(q, R_DUP_QUERY) == [8]


def test_comma_file_is_rejected(tmp_path):
    p = tmp_path / "query.csv"
    p.write_text("query_id,query,query_class\n0,salon chair,Massage Chairs\n")
    with pytest.raises(InputError) as err:
        load_wands_queries(p)
    msg = str(err.value)
    assert "header is comma-separated" in msg
    assert "expected a tab-separated file with columns query_id, query" in msg


def test_missing_file(tmp_path):
    d = copy_fixture(tmp_path)
    (d / "label.csv").unlink()
    with pytest.raises(InputError, match=r"label\.csv"):
        load_wands_dir(d, quarantine=Quarantine())


def test_bad_labels_are_quarantined(tmp_path):
    d = copy_fixture(tmp_path)
    append(
        d / "label.csv",
        ["20", "0", "1", "Maybe"],  # row 14: unknown label
        ["21", "999", "1", "Exact"],  # row 15: unknown query
        ["22", "0", "999", "Exact"],  # row 16: unknown product
        ["23", "1", "3", "Exact"],  # row 17: conflicts with row 5 (Partial)
        ["24", "3", "4", "partial"],  # row 18: same as row 9 (Partial), case-insensitive
    )
    q = Quarantine()
    ds = load_wands_dir(d, quarantine=q)
    assert q_rows(q, R_BAD_LABEL) == [14]
    assert q_rows(q, R_UNKNOWN_QUERY) == [15]
    assert q_rows(q, R_UNKNOWN_PRODUCT) == [16]
    assert q_rows(q, R_CONFLICT) == [5, 17]
    assert q_rows(q, R_DUP_LABEL) == [18]
    assert ds.qrels.height == 11
    assert ds.stats["quarantined_total"] == 6
    ds.validate()


def test_quarantined_product_takes_its_labels(tmp_path):
    d = copy_fixture(tmp_path)
    text = (d / "product.csv").read_text(encoding="utf-8")
    (d / "product.csv").write_text(
        text.replace("6\tdinosaur kids wall décor", "6\t "), encoding="utf-8"
    )
    q = Quarantine()
    ds = load_wands_dir(d, quarantine=q)
    assert q_rows(q, "empty product_name") == [8]
    assert q_rows(q, R_PRODUCT_QUARANTINED) == [7]  # label id 5: query 2 -> product 6
    assert "6" not in ds.items["item_id"].to_list()


def test_invalid_utf8_is_an_error(tmp_path):
    d = copy_fixture(tmp_path)
    (d / "query.csv").write_bytes((d / "query.csv").read_bytes().replace(b"\xc3\xa9", b"\xe9"))
    with pytest.raises(InputError, match=r"invalid UTF-8 byte 0xe9 on line 4"):
        load_wands_queries(d / "query.csv")
