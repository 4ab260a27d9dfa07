"""Review-to-item track: a review's text is the query, the reviewed product its one relevant item.

The contract tables come from the reviews table of `shelflab.data_io.amazon`:
- queries: query_id (one per distinct review), text (the review fields in params), timestamp
- qrels:   query_id, item_id, grade 1.0 (every item the review was posted under)
Item text follows the reviews seed's format, `[Title] … [Review Keywords] … [Description] …
[Features] …`, built only from the catalog and from reviews of the training period, so nothing of
a later period leaks into what the models index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from shelflab.data_io.dataset import stable_id
from shelflab.errors import ConfigError

QUERY_FIELDS = ("summary", "body")
# field -> its label in the item text
ITEM_FIELDS = {
    "title": "Title",
    "keywords": "Review Keywords",
    "description": "Description",
    "features": "Features",
    "categories": "Categories",
    "brand": "Brand",
}


def review_text(reviews: pl.DataFrame, fields: Sequence[str], separator: str) -> pl.Series:
    """The chosen review fields joined by `separator`, empty fields skipped."""
    bad = [f for f in fields if f not in QUERY_FIELDS]
    if bad or not fields:
        raise ConfigError(
            f"review query fields {list(fields)}: expected a non-empty list of {list(QUERY_FIELDS)}"
        )
    parts = [
        pl.when(pl.col(f).str.strip_chars() != "").then(pl.col(f).str.strip_chars()) for f in fields
    ]
    return reviews.select(
        pl.concat_str(parts, separator=separator, ignore_nulls=True).fill_null("").alias("text")
    )["text"]


REVIEW_KEY = ("user_id", "timestamp", "summary", "body")


def with_query_ids(reviews: pl.DataFrame) -> pl.DataFrame:
    """`reviews` plus `query_id`: one id per distinct review (user, time, summary, body).

    Amazon 2018 attaches one review to every variant of a product (All_Beauty: 5,269 rows, 1,382
    distinct reviews), so a query is a distinct review and each of its items is relevant.
    """
    key = pl.concat_str([pl.col(c).cast(pl.String) for c in REVIEW_KEY], separator="\x1f")
    digests = [stable_id("rq-", k) for k in reviews.select(key.alias("k"))["k"].to_list()]
    return reviews.with_columns(pl.Series("query_id", digests, dtype=pl.String))


def review_queries(
    reviews: pl.DataFrame, fields: Sequence[str] = QUERY_FIELDS, separator: str = ". "
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(queries, qrels) of the review-to-item task from reviews carrying `query_id`: one query per
    distinct review (first-seen order), every item it was posted under relevant (grade 1)."""
    first = reviews.unique("query_id", keep="first", maintain_order=True)
    queries = pl.DataFrame(
        {
            "query_id": first["query_id"],
            "text": review_text(first, fields, separator),
            "timestamp": first["timestamp"],
        }
    )
    qrels = reviews.select("query_id", "item_id", pl.lit(1.0).alias("grade")).unique(
        ["query_id", "item_id"], keep="first", maintain_order=True
    )
    return queries, qrels


def period_reviews(reviews: pl.DataFrame, splits: pl.DataFrame, split: str) -> pl.DataFrame:
    """The reviews (rows carrying `query_id`) of one period of the split."""
    ids = splits.filter(pl.col("split") == split).select("query_id")
    return reviews.join(ids, on="query_id", how="semi")


def item_text(
    items: pl.DataFrame,
    keywords: Mapping[str, Sequence[str]],
    fields: Sequence[str],
    max_chars: Mapping[str, int] | None = None,
) -> pl.DataFrame:
    """`items` with `keywords` (", "-joined) and `text` in the seed's labelled format.

    Fields missing from the catalog or empty for an item are left out of its text; `max_chars`
    cuts long fields (descriptions) at a word boundary.
    """
    unknown = [f for f in fields if f not in ITEM_FIELDS]
    if unknown or not fields:
        raise ConfigError(
            f"item_text.fields {list(fields)}: expected a non-empty list of {list(ITEM_FIELDS)}"
        )
    limits = dict(max_chars or {})
    kw = pl.DataFrame(
        {
            "item_id": list(keywords),
            "keywords": [", ".join(v) for v in keywords.values()],
        },
        schema={"item_id": pl.String, "keywords": pl.String},
    )
    out = items.drop("keywords", strict=False).join(kw, on="item_id", how="left")
    out = out.with_columns(pl.col("keywords").fill_null(""))
    texts = [
        _labelled(row, fields, limits)
        for row in out.select(_present(out, fields)).iter_rows(named=True)
    ]
    return out.with_columns(pl.Series("text", texts, dtype=pl.String))


def _present(df: pl.DataFrame, fields: Sequence[str]) -> list[str]:
    return [f for f in fields if f in df.columns]


def _labelled(row: Mapping[str, Any], fields: Sequence[str], limits: Mapping[str, int]) -> str:
    parts = []
    for f in fields:
        value = (row.get(f) or "").strip()
        if not value:
            continue
        parts.append(f"[{ITEM_FIELDS[f]}] {_cut(value, limits.get(f))}")
    return " ".join(parts)


def _cut(text: str, limit: int | None) -> str:
    if not limit or len(text) <= limit:
        return text
    head = text[:limit]
    return head[: head.rfind(" ")] if " " in head else head
