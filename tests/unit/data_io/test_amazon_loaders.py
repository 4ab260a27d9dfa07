"""Amazon review loaders: review files and whole review datasets (load_reviews,
load_review_dataset) on the real 2018 5-core All_Beauty file, the synthetic 2023 fixture (reviews
with its metadata), and one test per bad review input. Item catalogs, metadata and RecBole .item
files: test_amazon_items.py."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from amazon_helpers import FIXTURE_2023, q_rows, review_2018, write_lines, write_reviews

from shelflab.data_io.amazon import (
    ITEM_SCHEMA,
    R_BAD_VALUE,
    R_DUP_ITEM,
    R_DUP_REVIEW,
    R_EMPTY_TEXT,
    R_MALFORMED,
    R_MISSING,
    R_UNKNOWN_ITEM,
    REVIEW_SCHEMA,
    ReviewDataset,
    load_item_metadata,
    load_review_dataset,
    load_reviews,
    review_id,
)
from shelflab.errors import ConfigError, InputError
from shelflab.quarantine import Quarantine


def year_month(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


# ---------------------------------------------------------------- real data (skipped if absent)


@pytest.fixture(scope="module")
def beauty(amazon_dir: Path) -> tuple[ReviewDataset, Quarantine]:
    q = Quarantine()
    return load_review_dataset(amazon_dir / "All_Beauty_5.json.gz", quarantine=q), q


def test_all_beauty_counts(beauty):
    ds, q = beauty
    st = ds.stats["reviews"]
    assert st["format"] == "amazon_2018"
    assert st["read"] == 5269
    # 1,050 lines repeat an earlier review (same user, item, time, summary, text); 1,027 are
    # byte-identical copies, 23 differ only in style / verified / vote
    assert st["quarantined"] == {R_DUP_REVIEW: 1050}
    assert st["kept"] == ds.reviews.height == 4219
    assert st["read"] == st["kept"] + sum(st["quarantined"].values())
    assert q.counts() == {R_DUP_REVIEW: 1050}
    assert ds.items.height == 85 and ds.stats["n_items"] == 85
    assert ds.reviews["user_id"].n_unique() == ds.stats["n_users"] == 991
    assert year_month(ds.reviews["timestamp"].min()) == "2004-09"
    assert year_month(ds.reviews["timestamp"].max()) == "2018-08"
    assert ds.stats["time_span"] == ["2004-09-21", "2018-08-23"]


def test_all_beauty_shape_and_first_line(beauty):
    ds, _ = beauty
    assert dict(ds.reviews.schema) == REVIEW_SCHEMA
    assert dict(ds.items.schema) == ITEM_SCHEMA
    assert ds.reviews["review_id"].is_unique().all()
    assert ds.reviews.select("timestamp", "review_id").equals(
        ds.reviews.select("timestamp", "review_id").sort("timestamp", "review_id")
    )
    first = ds.reviews.filter(pl.col("row") == 1).row(0, named=True)
    assert first["rating"] == 5.0
    assert first["user_id"] == "A3CIUOJXQ5VDQ2"
    assert first["item_id"] == "B0000530HU"
    assert first["summary"] == "Five Stars"
    assert first["body"] == "As advertised. Reasonably priced"
    assert first["timestamp"] == 1472688000 and first["verified"] is True
    assert (first["votes"], first["images"]) == (0, 0)
    assert first["review_id"] == review_id(
        "A3CIUOJXQ5VDQ2", "B0000530HU", 1472688000, "Five Stars", first["body"]
    )
    # no metadata: items are the reviewed ids with empty text
    assert ds.items["title"].eq("").all() and ds.items["row"].is_null().all()
    assert set(ds.items["item_id"]) == set(ds.reviews["item_id"])


def test_all_beauty_load_reviews_matches_dataset(amazon_dir, beauty):
    ds, _ = beauty
    stats: dict = {}
    df = load_reviews(amazon_dir / "All_Beauty_5.json.gz", quarantine=Quarantine(), stats=stats)
    assert df["row"].is_sorted()  # file order
    assert df.sort("timestamp", "review_id").equals(ds.reviews)
    assert stats["read"] == 5269 and stats["kept"] == 4219
    # the one vote over a thousand in the file ("1,341") is parsed
    assert df["votes"].max() == 1341
    assert df["images"].sum() > 0


# ---------------------------------------------------------------- the 2023 fixture


def test_2023_fixture_reviews_and_reasons():
    q = Quarantine()
    ds = load_review_dataset(
        FIXTURE_2023 / "reviews.jsonl", FIXTURE_2023 / "meta.jsonl", quarantine=q, name="fx"
    )
    assert ds.name == "fx"
    assert ds.stats["reviews"]["format"] == ds.stats["items"]["format"] == "amazon_2023"
    assert q_rows(q, R_MALFORMED) == [4, 12]
    assert q_rows(q, R_EMPTY_TEXT) == [5]
    assert q_rows(q, R_DUP_REVIEW) == [6]
    assert q_rows(q, R_UNKNOWN_ITEM) == [7]
    assert q_rows(q, R_MISSING) == [5, 9]  # meta line 5, review line 9
    assert q_rows(q, R_BAD_VALUE) == [10, 11]
    assert q_rows(q, R_DUP_ITEM) == [4]
    st = ds.stats["reviews"]
    assert st["read"] == 13 and st["kept"] == 5
    assert st["read"] == st["kept"] + sum(st["quarantined"].values())
    assert sorted(ds.reviews["row"]) == [1, 2, 3, 8, 13]
    malformed = q.table().filter(pl.col("reason") == R_MALFORMED)["record"].to_list()
    assert json.loads(malformed[0])["line"].endswith("This line was trunc")  # raw line kept


def test_2023_fixture_values():
    q = Quarantine()
    ds = load_review_dataset(
        FIXTURE_2023 / "reviews.jsonl", FIXTURE_2023 / "meta.jsonl", quarantine=q
    )
    by_row = {r["row"]: r for r in ds.reviews.iter_rows(named=True)}
    first = by_row[1]
    assert first["item_id"] == "B0FIXP0001"  # parent_asin, not the child asin B0FIXC0001
    assert first["timestamp"] == 1588687728  # ms // 1000
    assert (first["votes"], first["images"], first["verified"]) == (3, 2, True)
    assert first["summary"] == "Smells lovely, lasts all day"
    assert by_row[2]["timestamp"] == 1609459200 and by_row[2]["verified"] is False
    bare = by_row[8]  # optional fields absent
    assert (bare["summary"], bare["votes"], bare["images"], bare["verified"]) == ("", 0, 0, False)
    assert by_row[13]["rating"] == 3.0
    assert ds.reviews["row"].to_list() == [1, 2, 3, 8, 13]  # sorted by timestamp
    items = {r["item_id"]: r for r in ds.items.iter_rows(named=True)}
    assert list(items) == ["B0FIXP0001", "B0FIXP0002", "B0FIXP0003"]
    mist = items["B0FIXP0001"]
    assert mist["title"] == "Fixture Blue Body Mist, 8 fl oz"  # first of the repeated id
    assert mist["brand"] == "Fixture Scents" and mist["price"] == "19.99"
    assert mist["features"] == "Light floral scent; Lasts up to 8 hours"
    assert mist["description"] == "A body mist for every day. Made for the fixture."
    assert mist["categories"] == "Beauty & Personal Care > Fragrance > Body Sprays"
    assert items["B0FIXP0002"]["price"] == "" and "&amp;" in items["B0FIXP0002"]["title"]
    hand = items["B0FIXP0003"]
    assert (hand["brand"], hand["price"], hand["features"], hand["row"]) == ("", "", "", 3)


def test_2023_fixture_explicit_format_and_stats():
    stats: dict = {}
    df = load_reviews(
        FIXTURE_2023 / "reviews.jsonl", fmt="amazon_2023", quarantine=Quarantine(), stats=stats
    )
    assert df.height == 6  # the unknown item is only known with metadata
    assert stats["quarantined"] == {
        R_BAD_VALUE: 2,
        R_DUP_REVIEW: 1,
        R_EMPTY_TEXT: 1,
        R_MALFORMED: 2,
        R_MISSING: 1,
    }
    # read as 2018, no line has a reviewerID: nothing usable, nothing quarantined
    q = Quarantine()
    with pytest.raises(InputError, match="no usable review"):
        load_reviews(FIXTURE_2023 / "reviews.jsonl", fmt="amazon_2018", quarantine=q)
    assert q.table().height == 0


# ---------------------------------------------------------------- synthetic edge cases


def test_gzip_detected_from_bytes_not_suffix(tmp_path):
    rows = [review_2018(), review_2018(reviewerID="AUSER2", summary="Fine")]
    plain = write_reviews(tmp_path / "reviews.json.gz", rows)  # plain text, .gz name
    packed = write_reviews(tmp_path / "reviews.json", rows, gz=True)  # gzip, plain name
    a = load_reviews(plain, quarantine=Quarantine())
    b = load_reviews(packed, quarantine=Quarantine())
    assert a.height == 2 and a.equals(b)


def test_vote_with_thousands_separator_and_images(tmp_path):
    rows = [
        review_2018(vote="1,234", image=["https://x/1.jpg", "https://x/2.jpg"]),
        review_2018(reviewerID="AUSER2", vote="7"),
        review_2018(reviewerID="AUSER3", vote="many"),
    ]
    q = Quarantine()
    df = load_reviews(write_reviews(tmp_path / "r.json", rows), quarantine=q)
    assert df["votes"].to_list() == [1234, 7]
    assert df["images"].to_list() == [2, 0]
    assert q_rows(q, R_BAD_VALUE) == [3]


def test_malformed_missing_bad_and_blank_lines(tmp_path):
    lines = [
        json.dumps(review_2018()),
        "{not json",
        "",
        json.dumps(review_2018(reviewerID="AUSER2", unixReviewTime=None)),  # missing
        json.dumps(review_2018(reviewerID="AUSER3", overall=6.0)),  # out of range
        json.dumps(review_2018(reviewerID="AUSER4", overall="five")),  # not numeric
        json.dumps(review_2018(reviewerID="AUSER5", asin="  ")),  # blank id = missing
        json.dumps(review_2018(reviewerID="AUSER6", summary=" ", reviewText=None)),  # empty
        "42",  # JSON, not an object
        json.dumps(review_2018(reviewerID="AUSER7", overall="4")),  # numeric string: fine
    ]
    q = Quarantine()
    stats: dict = {}
    df = load_reviews(write_lines(tmp_path / "r.json", lines), quarantine=q, stats=stats)
    assert df["row"].to_list() == [1, 10]
    assert q_rows(q, R_MALFORMED) == [2, 9]
    assert q_rows(q, R_MISSING) == [4, 7]
    assert q_rows(q, R_BAD_VALUE) == [5, 6]
    assert q_rows(q, R_EMPTY_TEXT) == [8]
    assert stats["read"] == 9  # non-blank lines
    assert stats["read"] == stats["kept"] + sum(stats["quarantined"].values())


def test_duplicate_keeps_first_and_ids_are_subset_stable(tmp_path):
    a, b = review_2018(), review_2018(reviewerID="AUSER2")
    q = Quarantine()
    full = load_reviews(write_reviews(tmp_path / "full.json", [b, a, a]), quarantine=q)
    part = load_reviews(write_reviews(tmp_path / "part.json", [a]), quarantine=Quarantine())
    assert full["row"].to_list() == [1, 2] and q_rows(q, R_DUP_REVIEW) == [3]
    assert part["review_id"].item() == full.filter(pl.col("row") == 2)["review_id"].item()
    assert part["review_id"].item().startswith("rv-") and len(part["review_id"].item()) == 15


def test_empty_file_error(tmp_path):
    for name, data in [("empty.json", b""), ("blank.json", b"\n \n"), ("e.gz", gzip.compress(b""))]:
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(InputError, match="file is empty") as err:
            load_reviews(p, quarantine=Quarantine())
        assert err.value.path == str(p)


def test_missing_file_and_unknown_format_name(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_reviews(tmp_path / "absent.json", quarantine=Quarantine())
    with pytest.raises(InputError, match="file not found"):
        load_review_dataset(FIXTURE_2023 / "reviews.jsonl", tmp_path / "x", quarantine=Quarantine())
    with pytest.raises(ConfigError, match="amazon_2018, amazon_2023"):
        load_reviews(FIXTURE_2023 / "reviews.jsonl", fmt="amazon_2014", quarantine=Quarantine())


def test_no_usable_line_error_names_first_bad_line(tmp_path):
    p = write_lines(tmp_path / "r.json", ["", "nope", "{broken"])
    q = Quarantine()
    with pytest.raises(InputError) as err:
        load_reviews(p, quarantine=q)
    msg = str(err.value)
    assert "no usable review in 2 line(s)" in msg and "first bad line 2" in msg
    assert str(p) in msg and "\n" not in msg
    assert q.table().height == 0  # an unusable file leaves the quarantine alone


def test_undetectable_format_error_names_path_line_and_keys(tmp_path):
    p = write_lines(tmp_path / "r.json", ["garbage", json.dumps({"foo": 1, "bar": 2})])
    with pytest.raises(InputError) as err:
        load_reviews(p, quarantine=Quarantine())
    msg = str(err.value)
    assert f"{p}, row 2" in msg
    assert "cannot detect the format from the keys of line 2 (bar, foo)" in msg
    assert "reviewerID" in msg and "parent_asin" in msg  # what was expected
    with pytest.raises(InputError, match="cannot detect the format"):
        load_item_metadata(p, quarantine=Quarantine())


def test_blank_lines_counted_and_defaults(tmp_path):
    lines = ["", json.dumps(review_2018(verified=None)), "   ", json.dumps(review_2018(vote=""))]
    stats: dict = {}
    df = load_reviews(write_lines(tmp_path / "r.json", lines), quarantine=Quarantine(), stats=stats)
    assert stats["blank_lines"] == 2 and stats["read"] == 2
    # line 4 repeats line 2 (vote and verified are not part of the review id)
    assert df["row"].to_list() == [2]
    assert (df["verified"].item(), df["votes"].item()) == (False, 0)


def test_corrupt_gzip_error(tmp_path):
    p = tmp_path / "r.json"
    p.write_bytes(gzip.compress(json.dumps(review_2018()).encode() * 50)[:40])
    with pytest.raises(InputError, match="unreadable data") as err:
        load_reviews(p, quarantine=Quarantine())
    assert err.value.path == str(p)


def test_review_id_collision_is_an_error_not_a_duplicate(tmp_path, monkeypatch):
    from shelflab.data_io import amazon_reviews

    digests = iter(["a" * 12 + "0" * 28, "a" * 12 + "1" * 28])
    monkeypatch.setattr(amazon_reviews, "review_digest", lambda *_: next(digests))
    p = write_reviews(tmp_path / "r.json", [review_2018(), review_2018(reviewerID="AUSER2")])
    with pytest.raises(InputError, match="review id rv-aaaaaaaaaaaa of line 2 collides"):
        load_reviews(p, quarantine=Quarantine())


def test_quarantine_record_is_the_raw_line(tmp_path):
    raw = json.dumps(review_2018(overall=9))
    q = Quarantine()
    load_reviews(write_lines(tmp_path / "r.json", [json.dumps(review_2018()), raw]), quarantine=q)
    t = q.table()
    assert t["source"].to_list() == [str(tmp_path / "r.json")]
    assert json.loads(t["record"].item()) == {"line": raw}
