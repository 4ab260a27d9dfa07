"""Amazon 2018 / 2023 review files as REVIEW_SCHEMA, and the stable review id.

The formats, the review id and the quarantine reasons are described in
`shelflab.data_io.amazon`, which re-exports the public names of this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.data_io.amazon_common import (
    R_BAD_VALUE,
    R_DUP_REVIEW,
    R_EMPTY_TEXT,
    R_MISSING,
    BadValue,
    Rejects,
    as_count,
    as_flag,
    as_id,
    as_image_count,
    as_number,
    as_text,
    as_timestamp,
    check_format,
    finish_table,
    is_present,
    json_objects,
    public_table,
    sniff_format,
)
from shelflab.data_io.csvutil import require_file
from shelflab.errors import InputError
from shelflab.quarantine import Quarantine

REVIEW_SCHEMA: dict[str, Any] = {
    "review_id": pl.String,
    "user_id": pl.String,
    "item_id": pl.String,
    "rating": pl.Float64,
    "timestamp": pl.Int64,
    "summary": pl.String,
    "body": pl.String,
    "verified": pl.Boolean,
    "votes": pl.Int64,
    "images": pl.Int64,
    "row": pl.Int64,
}
REVIEW_FORMATS = ("amazon_2018", "amazon_2023")
REVIEW_ID_PREFIX = "rv-"
RATING_MIN, RATING_MAX = 1.0, 5.0


@dataclass(frozen=True)
class _ReviewKeys:
    """Where each output field lives in one review format."""

    user: str
    item: str
    rating: str
    timestamp: str
    summary: str
    body: str
    verified: str
    votes: str
    images: str
    ms: bool  # timestamp in milliseconds


_REVIEW_KEYS = {
    "amazon_2018": _ReviewKeys(
        "reviewerID", "asin", "overall", "unixReviewTime", "summary", "reviewText",
        "verified", "vote", "image", ms=False,
    ),
    "amazon_2023": _ReviewKeys(
        "user_id", "parent_asin", "rating", "timestamp", "title", "text",
        "verified_purchase", "helpful_vote", "images", ms=True,
    ),
}  # fmt: skip
# Keys that only one format has: "auto" picks the format sharing most of them with the first
# JSON object of the file (asin, title, images... are in both and decide nothing).
_REVIEW_MARKERS = {
    "amazon_2018": {"reviewerID", "overall", "unixReviewTime", "reviewText", "reviewTime",
                    "reviewerName", "summary", "vote", "style", "image"},
    "amazon_2023": {"user_id", "parent_asin", "rating", "timestamp", "text", "helpful_vote",
                    "verified_purchase"},
}  # fmt: skip
_EXPECT_REVIEWS = (
    "JSON lines of Amazon 2018 reviews (reviewerID, asin, overall, unixReviewTime, ...) or "
    "Amazon 2023 reviews (user_id, parent_asin, rating, timestamp, ...)"
)


def review_digest(user_id: str, item_id: str, timestamp: int, summary: str, body: str) -> str:
    """The full sha1 hex digest a review id is cut from."""
    key = "\x1f".join([user_id, item_id, str(timestamp), summary, body])
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def review_id(user_id: str, item_id: str, timestamp: int, summary: str, body: str) -> str:
    """The stable id of a review (see the docstring of `shelflab.data_io.amazon`)."""
    return REVIEW_ID_PREFIX + review_digest(user_id, item_id, timestamp, summary, body)[:12]


def _review_row(obj: dict, keys: _ReviewKeys) -> tuple[str | None, tuple]:
    """(None, row values) for a usable review, else (reason, ())."""
    required = (keys.user, keys.item, keys.rating, keys.timestamp)
    if not all(is_present(obj.get(k)) for k in required):
        return R_MISSING, ()
    try:
        user, item = as_id(obj[keys.user]), as_id(obj[keys.item])
        rating = as_number(obj[keys.rating])
        if not RATING_MIN <= rating <= RATING_MAX:
            raise BadValue(f"rating {rating}")
        ts = as_timestamp(obj[keys.timestamp], keys.ms)
        votes, images = as_count(obj.get(keys.votes)), as_image_count(obj.get(keys.images))
        verified = as_flag(obj.get(keys.verified))
    except BadValue:
        return R_BAD_VALUE, ()
    summary, body = as_text(obj.get(keys.summary)), as_text(obj.get(keys.body))
    if not summary.strip() and not body.strip():
        return R_EMPTY_TEXT, ()
    rid = review_digest(user, item, ts, summary, body)
    return None, (rid, user, item, rating, ts, summary, body, verified, votes, images)


def _check_repeat(
    seen: dict[str, tuple[str, int]], rid: str, digest: str, path: Path, row: int
) -> str | None:
    """R_DUP_REVIEW for a repeated review; raises on two different reviews sharing an id (48
    bits: a collision is only likely past ~10M reviews, and must not pass for a duplicate)."""
    if rid not in seen:
        return None
    if seen[rid][0] == digest:
        return R_DUP_REVIEW
    raise InputError(
        f"review id {rid} of line {row} collides with line {seen[rid][1]}",
        path=path,
        row=row,
        expected="distinct 12-hex-digit ids for distinct reviews",
    )


def read_reviews(
    path: str | Path, fmt: str, quarantine: Quarantine
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Reviews (REVIEW_SCHEMA + the raw line in RAW_LINE_COL) and the loading stats."""
    check_format(fmt, REVIEW_FORMATS, "review")
    p = require_file(path, "Amazon reviews file")
    rejects = Rejects()
    rows: list[tuple] = []
    seen: dict[str, tuple[str, int]] = {}  # review id -> (full digest, line)
    keys: _ReviewKeys | None = None if fmt == "auto" else _REVIEW_KEYS[fmt]
    for n, line, obj in json_objects(p, rejects):
        if keys is None:
            fmt = sniff_format(obj, _REVIEW_MARKERS, p, n, _EXPECT_REVIEWS)
            keys = _REVIEW_KEYS[fmt]
        reason, values = _review_row(obj, keys)
        if reason is None:
            digest, rid = values[0], REVIEW_ID_PREFIX + values[0][:12]
            reason = _check_repeat(seen, rid, digest, p, n)
            values = (rid, *values[1:])
        if reason is not None:
            rejects.add(reason, n, line)
            continue
        seen[rid] = (digest, n)
        rows.append((*values, n, line))
    return finish_table(p, fmt, rows, rejects, quarantine, "review", _EXPECT_REVIEWS, REVIEW_SCHEMA)


def load_reviews(
    path: str | Path,
    *,
    fmt: str = "auto",
    quarantine: Quarantine,
    stats: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """Reviews of an Amazon 2018 or 2023 JSON-lines file as REVIEW_SCHEMA, in file order.

    `fmt` is "auto" (from the keys of the first JSON object) or one of REVIEW_FORMATS. Unusable
    lines are quarantined (see the docstring of `shelflab.data_io.amazon`). When given, `stats`
    is filled with path, format, read (non-blank lines), kept, quarantined (per reason) and
    blank_lines. Raises InputError for a missing or empty file, a file with no usable review,
    or a format that cannot be detected; ConfigError for an unknown `fmt`.
    """
    return public_table(read_reviews(path, fmt, quarantine), stats)
