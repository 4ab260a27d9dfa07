"""Review -> item task tables, item text format, and no leakage from later periods."""

from pathlib import Path

import polars as pl
import pytest

from shelflab.errors import ConfigError
from shelflab.protocols.time_split import time_split
from shelflab.quarantine import Quarantine
from shelflab.reviews.enrich import enrich_items
from shelflab.reviews.keywords import KeywordConfig, review_terms
from shelflab.reviews.track import item_text, period_reviews, review_queries, with_query_ids

SAMPLE = Path(__file__).parents[3] / "data" / "sample" / "amazon" / "All_Beauty_5.sample.json.gz"


def reviews(rows: list[tuple[str, str, int, str, str]]) -> pl.DataFrame:
    user, item, ts, summary, body = zip(*rows, strict=True)
    return pl.DataFrame(
        {
            "review_id": [f"r{i}" for i in range(len(rows))],
            "user_id": user,
            "item_id": item,
            "timestamp": ts,
            "summary": summary,
            "body": body,
        }
    )


def test_one_query_per_distinct_review_with_all_its_variants_relevant():
    df = with_query_ids(
        reviews(
            [
                ("u1", "red", 5, "Nice", "Lovely colour"),
                ("u1", "blue", 5, "Nice", "Lovely colour"),  # same review, another variant
                ("u2", "red", 6, "", "Too dry"),
            ]
        )
    )
    queries, qrels = review_queries(df)
    assert queries.height == 2
    assert queries["text"].to_list() == ["Nice. Lovely colour", "Too dry"]
    first = queries["query_id"][0]
    assert sorted(qrels.filter(pl.col("query_id") == first)["item_id"]) == ["blue", "red"]
    assert qrels["grade"].unique().to_list() == [1.0]


def test_query_fields_configurable_and_checked():
    df = with_query_ids(reviews([("u", "i", 1, "Title", "Body")]))
    assert review_queries(df, ["body"])[0]["text"].to_list() == ["Body"]
    with pytest.raises(ConfigError, match="review query fields"):
        review_queries(df, ["stars"])


def test_item_text_labels_order_and_cut():
    items = pl.DataFrame(
        {"item_id": ["a", "b"], "title": ["Lip Balm", ""], "description": ["one two three", ""]}
    )
    out = item_text(
        items, {"a": ["soft", "minty"]}, ["title", "keywords", "description"], {"description": 8}
    )
    assert out["text"].to_list() == [
        "[Title] Lip Balm [Review Keywords] soft, minty [Description] one two",
        "",
    ]
    with pytest.raises(ConfigError, match=r"item_text\.fields"):
        item_text(items, {}, ["colour"])


@pytest.mark.skipif(not SAMPLE.is_file(), reason="shipped sample missing")
def test_keywords_come_only_from_training_period_reviews_on_real_data(tmp_path):
    from shelflab.data_io.amazon import load_review_dataset

    ds = load_review_dataset(SAMPLE, quarantine=Quarantine())
    revs = with_query_ids(ds.reviews)
    queries, _ = review_queries(revs)
    splits = time_split(queries, (0.8, 0.1, 0.1)).splits
    cfg = {"fields": ["title", "keywords"], "keywords": {"max_keywords": 15}}
    items, stats = enrich_items(ds.items, revs, splits, cfg, root=tmp_path)
    train = period_reviews(revs, splits, "train")
    later = period_reviews(revs, splits, "test")
    assert train["timestamp"].max() < later["timestamp"].min()
    kw_cfg = KeywordConfig()
    allowed: dict[str, set[str]] = {}
    for item, s, b in train.select("item_id", "summary", "body").iter_rows():
        allowed.setdefault(item, set()).update(review_terms(f"{s}. {b}", kw_cfg))
    for item, kws in items.select("item_id", "keywords").iter_rows():
        for kw in filter(None, kws.split(", ")):
            assert kw in allowed[item], (item, kw)
    # an item reviewed only after the training period has no review text to show
    only_later = set(revs["item_id"]) - set(train["item_id"])
    assert stats["items_with_empty_text"] == len(only_later)
    assert stats["train_reviews"] == train.height
