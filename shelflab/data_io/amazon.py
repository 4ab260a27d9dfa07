"""Loaders for Amazon review data: reviews, item metadata, and the two joined.

Inputs (plain or gzipped, detected from the magic bytes, never the suffix; UTF-8):
- Amazon Review Data 2018 (Ni, Li, McAuley 2019), JSON lines.
  reviews:  overall, verified, reviewTime, reviewerID, asin, style, reviewerName, reviewText,
            summary, unixReviewTime (seconds)[, vote ("1,234"), image (list of URLs)]
  metadata: asin, title, description (list), feature (list), category (list), brand,
            price (str, e.g. "$12.99"), ...
- Amazon Reviews 2023 (Hou et al. 2024), JSON lines; the item id is `parent_asin` (reviews
  join the metadata on it; a review without one is "missing field", `asin` is not used).
  reviews:  rating, title, text, images (list), asin, parent_asin, user_id,
            timestamp (milliseconds), verified_purchase, helpful_vote
  metadata: main_category, title, average_rating, rating_number, features (list),
            description (list), price (number or null), images, videos, store,
            categories (list), details (dict), parent_asin, bought_together
- RecBole atomic item file (see data_io/recbole.py): `item_id:token title:token
  categories:token_seq brand:token ...`; other fields are ignored.

Outputs (column order as below):
- reviews `REVIEW_SCHEMA`: review_id, user_id, item_id, rating (1..5), timestamp (unix
  seconds), summary, body ("" when missing), verified (missing -> False), votes, images
  (counts, missing -> 0), row (1-based line in the source file). Text is kept raw.
- items `ITEM_SCHEMA`: item_id, title, description (list joined by " "), features ("; "),
  categories (" > "), brand (2023: `store`), price (as text), row. Missing -> "".
  HTML entities (&amp;) are kept raw, as published.

`review_id` = "rv-" + sha1("\\x1f".join([user_id, item_id, timestamp, summary, body]))[:12]: the
same review gets the same id in any subset of the file. Two different reviews sharing an id
(a 48-bit collision) raise InputError rather than pass for duplicates.

Every unusable line goes to the Quarantine with its line number, the raw line as the record,
and one reason (checked in this order; nothing is dropped silently, blank lines aside, which
hold no data and are counted in the stats): "malformed JSON" (not JSON / not an object / not
UTF-8), "missing field" (no user, item, rating or timestamp; for items no id), "bad value"
(rating or timestamp not a finite number, rating outside 1..5, timestamp negative or beyond
2**53, a vote count, image list or verified flag that cannot be read), "empty text" (summary
and body both blank), "duplicate review" (same review_id: the first is kept), "duplicate item"
(repeated item id: the first is kept), "unknown item" (load_review_dataset: a review of an item
absent from the metadata). RecBole records with the wrong field count use csvutil's MALFORMED
reason.

The loaders live in `amazon_reviews` and `amazon_items` (shared reading and value coercion in
`amazon_common`); this module joins them and re-exports their public names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.data_io.amazon_common import (
    R_BAD_VALUE,
    R_DUP_ITEM,
    R_DUP_REVIEW,
    R_EMPTY_TEXT,
    R_MALFORMED,
    R_MISSING,
    R_UNKNOWN_ITEM,
    RAW_LINE_COL,
)
from shelflab.data_io.amazon_items import (
    ITEM_SCHEMA,
    METADATA_FORMATS,
    load_item_metadata,
    read_items,
)
from shelflab.data_io.amazon_reviews import (
    RATING_MAX,
    RATING_MIN,
    REVIEW_FORMATS,
    REVIEW_ID_PREFIX,
    REVIEW_SCHEMA,
    load_reviews,
    read_reviews,
    review_digest,
    review_id,
)
from shelflab.errors import InputError
from shelflab.quarantine import Quarantine

__all__ = [
    "ITEM_SCHEMA",
    "METADATA_FORMATS",
    "RATING_MAX",
    "RATING_MIN",
    "REVIEW_FORMATS",
    "REVIEW_ID_PREFIX",
    "REVIEW_SCHEMA",
    "R_BAD_VALUE",
    "R_DUP_ITEM",
    "R_DUP_REVIEW",
    "R_EMPTY_TEXT",
    "R_MALFORMED",
    "R_MISSING",
    "R_UNKNOWN_ITEM",
    "ReviewDataset",
    "dataset_name",
    "load_item_metadata",
    "load_review_dataset",
    "load_reviews",
    "review_digest",
    "review_id",
]


@dataclass
class ReviewDataset:
    """Reviews joined to their items.

    - reviews: REVIEW_SCHEMA, sorted by (timestamp, review_id); every item_id is in `items`
    - items:   ITEM_SCHEMA, sorted by item_id, one row per item (the whole catalog when
               metadata was given, else the reviewed items with empty text and row null)
    - stats:   paths, formats, rows read / kept / quarantined per reason, users, time span
    """

    name: str
    reviews: pl.DataFrame
    items: pl.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


def dataset_name(path: str | Path) -> str:
    """`All_Beauty_5.json.gz` -> `All_Beauty_5` (compression and format suffixes removed)."""
    name = Path(path).name
    for suffix in (".gz", ".json", ".jsonl", ".ndjson"):
        name = name.removesuffix(suffix)
    return name


def _items_from_reviews(reviews: pl.DataFrame) -> pl.DataFrame:
    ids = reviews["item_id"].unique()
    return pl.DataFrame({"item_id": ids}).with_columns(
        *(pl.lit("", dtype=pl.String).alias(c) for c in list(ITEM_SCHEMA)[1:-1]),
        pl.lit(None, dtype=pl.Int64).alias("row"),
    )


def _quarantine_unknown(
    reviews: pl.DataFrame, items: pl.DataFrame, quarantine: Quarantine, source: str
) -> pl.DataFrame:
    """Reviews of items absent from `items` go to the quarantine; returns the others."""
    unknown = ~reviews["item_id"].is_in(items["item_id"].implode())
    if unknown.any():
        bad = reviews.filter(unknown)
        quarantine.add(
            bad.select("row", pl.col(RAW_LINE_COL).alias("line")),
            source=source,
            reason=R_UNKNOWN_ITEM,
        )
    return reviews.filter(~unknown)


def _span(reviews: pl.DataFrame) -> list[str]:
    """[first, last] review date as ISO dates (UTC)."""
    ts = reviews["timestamp"]
    return [datetime.fromtimestamp(int(t), UTC).date().isoformat() for t in (ts.min(), ts.max())]


def load_review_dataset(
    reviews_path: str | Path,
    metadata_path: str | Path | None = None,
    *,
    quarantine: Quarantine,
    name: str | None = None,
) -> ReviewDataset:
    """Reviews (+ item metadata when given; formats detected) as a ReviewDataset.

    With metadata, reviews of items it lacks are quarantined as "unknown item" (the join key
    is asin for 2018, parent_asin for 2023, item_id for RecBole). Raises InputError as the two
    loaders do, and when no review is left after the join (the files do not belong together).
    """
    reviews, r_stats = read_reviews(reviews_path, "auto", quarantine)
    i_stats: dict[str, Any] = {}
    if metadata_path is None:
        items = _items_from_reviews(reviews)
    else:
        items, i_stats = read_items(metadata_path, "auto", quarantine)
        items = items.drop(RAW_LINE_COL)
        n_before = reviews.height
        reviews = _quarantine_unknown(reviews, items, quarantine, r_stats["path"])
        if n_before - reviews.height:
            r_stats["quarantined"][R_UNKNOWN_ITEM] = n_before - reviews.height
        r_stats["kept"] = reviews.height
        if reviews.height == 0:
            raise InputError(
                f"none of the {n_before} usable reviews has its item in {metadata_path}",
                path=reviews_path,
                expected="reviews and metadata of the same Amazon category",
            )
    reviews = reviews.drop(RAW_LINE_COL).sort("timestamp", "review_id")
    items = items.sort("item_id")
    stats = {
        "name": name or dataset_name(reviews_path),
        "reviews": r_stats,
        "items": i_stats or {"path": None, "format": None, "read": 0, "kept": 0},
        "n_reviews": reviews.height,
        "n_items": items.height,
        "n_users": reviews["user_id"].n_unique(),
        "n_reviewed_items": reviews["item_id"].n_unique(),
        "time_span": _span(reviews),
    }
    return ReviewDataset(name=stats["name"], reviews=reviews, items=items, stats=stats)
