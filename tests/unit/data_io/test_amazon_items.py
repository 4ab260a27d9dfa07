"""Amazon item loaders: item catalogs from 2018 metadata (real Gift_Cards metadata) and RecBole
.item files (real Appliances item file) as load_review_dataset joins them with reviews, item
files read alone (load_item_metadata), and one test per bad metadata / .item input. Review files
and whole review datasets: test_amazon_loaders.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from amazon_helpers import FIXTURE_2023, q_rows, review_2018, write_lines, write_reviews

from shelflab.data_io.amazon import (
    R_DUP_ITEM,
    R_DUP_REVIEW,
    R_MISSING,
    R_UNKNOWN_ITEM,
    ReviewDataset,
    load_item_metadata,
    load_review_dataset,
    load_reviews,
)
from shelflab.data_io.csvutil import MALFORMED as R_RAGGED
from shelflab.errors import InputError
from shelflab.quarantine import Quarantine

# ---------------------------------------------------------------- real data (skipped if absent)


def _with_quarantine(reviews: Path, items: Path) -> tuple[ReviewDataset, Quarantine]:
    q = Quarantine()
    return load_review_dataset(reviews, items, quarantine=q), q


@pytest.fixture(scope="module")
def gift_cards(amazon_dir: Path) -> tuple[ReviewDataset, Quarantine]:
    return _with_quarantine(
        amazon_dir / "Gift_Cards_5.json.gz", amazon_dir / "meta_Gift_Cards.json.gz"
    )


@pytest.fixture(scope="module")
def appliances(amazon_dir: Path) -> tuple[ReviewDataset, Quarantine]:
    return _with_quarantine(
        amazon_dir / "Appliances_5.json.gz", amazon_dir / "Amazon_Appliances.item.gz"
    )


def test_gift_cards_with_metadata(gift_cards):
    ds, q = gift_cards
    assert ds.stats["items"]["format"] == "amazon_2018"
    assert ds.stats["items"]["read"] == 1547
    assert ds.stats["items"]["quarantined"] == {}  # no repeated asin in meta_Gift_Cards
    assert ds.items.height == 1547 and ds.items["item_id"].is_unique().all()
    assert ds.reviews.height == 2972 and q.counts() == {}
    reviewed = set(ds.reviews["item_id"])
    assert len(reviewed) == 148 and reviewed <= set(ds.items["item_id"])
    assert ds.stats["n_users"] == 458
    assert ds.stats["time_span"][0].startswith("2012-01")
    assert ds.stats["time_span"][1].startswith("2018-08")
    card = ds.items.filter(pl.col("item_id") == "B001GXRQW0").row(0, named=True)
    assert card["title"] == "Amazon.com Gift Cards" and card["brand"] == "Amazon"
    assert card["categories"] == "Gift Cards > Gift Cards"  # as published (repeated)
    assert card["features"].startswith(
        "Amazon.com Gift cards never expire and carry no fees Gift cards ship for free; Single"
    )
    assert ds.items.filter(pl.col("price") != "").height > 0


def test_appliances_with_recbole_items(appliances):
    ds, q = appliances
    st = ds.stats["reviews"]
    assert ds.stats["items"]["format"] == "recbole"
    assert ds.items.height == 30239 and ds.stats["items"]["quarantined"] == {}
    # 2,277 lines hold only 205 distinct reviews; B00186NSGS (2 reviews) is not in the item file
    assert st["read"] == 2277
    assert st["quarantined"] == {R_DUP_REVIEW: 2072, R_UNKNOWN_ITEM: 2}
    assert st["kept"] == ds.reviews.height == 203
    assert q_rows(q, R_UNKNOWN_ITEM) == [100, 101]
    unknown = q.table().filter(pl.col("reason") == R_UNKNOWN_ITEM)["record"].to_list()
    assert all("B00186NSGS" in r for r in unknown)
    assert ds.reviews["item_id"].n_unique() == 47 and ds.stats["n_users"] == 47
    assert "B00186NSGS" not in set(ds.reviews["item_id"])
    assert ds.reviews["votes"].max() == 1917


def test_appliances_quoted_tab_titles_whole(appliances):
    ds, _ = appliances
    items = ds.items.filter(pl.col("item_id").is_in(["B00EN8K1ZE", "B00X0WHPJ4"])).sort("item_id")
    assert items["title"].to_list() == [
        "VULCAN HART 353613-2 500 Degree Temperature Control\t353613-2",
        "GE Part Number\tWR32X10839 Pan Snack Upper",
    ]
    assert items["brand"].to_list() == ["Vulcan Hart", "GE"]
    assert items["row"].to_list() == [13738, 23982]
    assert items["categories"].to_list() == ["Appliances", "Appliances"]
    one = ds.items.filter(pl.col("item_id") == "7861850250")["title"].item()
    assert "Pure &amp; Fresh" in one  # HTML entities stay raw
    parts = ds.items.filter(pl.col("categories").str.contains(">"))["categories"]
    assert "Appliances > Water Filters" in set(parts)


def test_metadata_file_passed_as_reviews_is_not_detected(amazon_dir):
    with pytest.raises(InputError, match="cannot detect the format from the keys of line 1"):
        load_reviews(amazon_dir / "meta_Gift_Cards.json.gz", quarantine=Quarantine())


# ---------------------------------------------------------------- synthetic edge cases


def test_reviews_unrelated_to_metadata_error(tmp_path):
    p = write_reviews(tmp_path / "r.json", [review_2018(asin="B0NOTINMETA")])
    with pytest.raises(InputError, match="none of the 1 usable reviews"):
        load_review_dataset(p, FIXTURE_2023 / "meta.jsonl", quarantine=Quarantine())


def test_recbole_item_file_edge_cases(tmp_path):
    header = "item_id:token\ttitle:token\tcategories:token_seq\tbrand:token\tsales_rank:float"
    lines = [
        header,
        "I1\t\"Quoted\ttab title\"\t'Appliances', 'Ice Makers'\tAcme\t12.0",
        "I2\tPlain\t\tBrandless\t",
        "I1\tRepeat\t'Appliances'\tAcme\t",
        "I3\ttoo\tfew",
        "\tNo id\t'Appliances'\tAcme\t",
        "I4\tSpace seq\tkitchen parts\tAcme\t",
    ]
    q = Quarantine()
    stats: dict = {}
    p = write_lines(tmp_path / "x.item", lines, gz=True)
    items = load_item_metadata(p, quarantine=q, stats=stats)
    assert stats["format"] == "recbole"
    assert items["item_id"].to_list() == ["I1", "I2", "I4"]
    assert items["title"][0] == "Quoted\ttab title"
    assert items["categories"].to_list() == ["Appliances > Ice Makers", "", "kitchen > parts"]
    assert items["row"].to_list() == [2, 3, 7]
    assert q_rows(q, R_DUP_ITEM) == [4]
    assert q_rows(q, R_RAGGED) == [5]
    assert q_rows(q, R_MISSING) == [6]
    assert stats["read"] == 6 == stats["kept"] + sum(stats["quarantined"].values())


def test_recbole_header_without_item_id(tmp_path):
    p = write_lines(tmp_path / "x.item", ["asin:token\ttitle:token", "A\tB"])
    with pytest.raises(InputError, match=r"missing field\(s\) item_id") as err:
        load_item_metadata(p, quarantine=Quarantine())
    assert err.value.row == 1


def test_2018_metadata_missing_and_repeated_asin(tmp_path):
    rows = [
        {"asin": "A1", "title": "One", "description": ["x", "", "y"], "feature": ["f"],
         "category": ["C", "D"], "brand": "B", "price": "$1.00"},
        {"asin": "A1", "title": "One again"},
        {"title": "No asin", "category": ["C"]},
        {"asin": "A2"},
    ]  # fmt: skip
    q = Quarantine()
    p = shutil.copy(write_reviews(tmp_path / "m.json", rows), tmp_path / "meta.txt")
    items = load_item_metadata(p, quarantine=q)
    assert items.rows() == [
        ("A1", "One", "x y", "f", "C > D", "B", "$1.00", 1),
        ("A2", "", "", "", "", "", "", 4),
    ]
    assert q_rows(q, R_DUP_ITEM) == [2] and q_rows(q, R_MISSING) == [3]


def test_metadata_without_usable_item(tmp_path):
    p = write_lines(tmp_path / "m.json", ["{oops", json.dumps({"title": "x", "asin": ""})])
    q = Quarantine()
    with pytest.raises(InputError, match="no usable item in 2 line"):
        load_item_metadata(p, fmt="amazon_2018", quarantine=q)
    assert q.table().height == 0
