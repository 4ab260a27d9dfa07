"""Amazon 2018 / 2023 item metadata (JSON lines) or a RecBole atomic item file as ITEM_SCHEMA.

The formats and the quarantine reasons are described in `shelflab.data_io.amazon`, which
re-exports the public names of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.data_io.amazon_common import (
    R_BAD_VALUE,
    R_DUP_ITEM,
    R_MISSING,
    BadValue,
    Rejects,
    as_id,
    as_text,
    check_format,
    finish_table,
    first_line,
    is_present,
    json_objects,
    public_table,
    sniff_format,
)
from shelflab.data_io.csvutil import MALFORMED, require_file
from shelflab.data_io.recbole import is_atomic_header, read_atomic, token_seq_values
from shelflab.quarantine import Quarantine

ITEM_SCHEMA: dict[str, Any] = {
    "item_id": pl.String,
    "title": pl.String,
    "description": pl.String,
    "features": pl.String,
    "categories": pl.String,
    "brand": pl.String,
    "price": pl.String,
    "row": pl.Int64,
}
METADATA_FORMATS = ("amazon_2018", "amazon_2023", "recbole")


@dataclass(frozen=True)
class _ItemKeys:
    item: str
    description: str
    features: str
    categories: str
    brand: str


_ITEM_KEYS = {
    "amazon_2018": _ItemKeys("asin", "description", "feature", "category", "brand"),
    "amazon_2023": _ItemKeys("parent_asin", "description", "features", "categories", "store"),
}
# Keys that only one format has: "auto" picks the format sharing most of them with the first
# JSON object of the file (asin, title, images... are in both and decide nothing).
_ITEM_MARKERS = {
    "amazon_2018": {"asin", "feature", "category", "also_buy", "also_view", "main_cat",
                    "imageURL", "imageURLHighRes", "rank", "similar_item", "tech1"},
    "amazon_2023": {"parent_asin", "main_category", "features", "categories", "store",
                    "average_rating", "rating_number", "bought_together", "videos", "details"},
}  # fmt: skip
_EXPECT_ITEMS = (
    "JSON lines of Amazon 2018 metadata (asin, title, ...), Amazon 2023 metadata "
    "(parent_asin, title, store, ...) or a RecBole atomic item file (item_id:token ...)"
)


def _joined(value: Any, sep: str) -> str:
    """A list field as one string (blank entries skipped); a plain string unchanged."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        parts = (as_text(v).strip() for v in value if v is not None)
        return sep.join(p for p in parts if p)
    return as_text(value)


def _item_row(obj: dict, keys: _ItemKeys) -> tuple[str | None, tuple]:
    """(None, row values) for a usable metadata object, else (reason, ())."""
    if not is_present(obj.get(keys.item)):
        return R_MISSING, ()
    try:
        item = as_id(obj[keys.item])
    except BadValue:
        return R_BAD_VALUE, ()
    return None, (
        item,
        as_text(obj.get("title")),
        _joined(obj.get(keys.description), " "),
        _joined(obj.get(keys.features), "; "),
        _joined(obj.get(keys.categories), " > "),
        as_text(obj.get(keys.brand)),
        as_text(obj.get("price")),  # 2018 "$12.99" as published; 2023 19.99 -> "19.99"
    )


def _read_json_items(p: Path, fmt: str, rejects: Rejects) -> tuple[list[tuple], str]:
    """Rows (ITEM_SCHEMA values + raw line) of a JSON-lines metadata file, and its format."""
    rows: list[tuple] = []
    seen: set[str] = set()
    keys: _ItemKeys | None = None if fmt == "auto" else _ITEM_KEYS[fmt]
    for n, line, obj in json_objects(p, rejects):
        if keys is None:
            fmt = sniff_format(obj, _ITEM_MARKERS, p, n, _EXPECT_ITEMS)
            keys = _ITEM_KEYS[fmt]
        reason, values = _item_row(obj, keys)
        if reason is None and values[0] in seen:
            reason = R_DUP_ITEM
        if reason is not None:
            rejects.add(reason, n, line)
            continue
        seen.add(values[0])
        rows.append((*values, n, line))
    return rows, fmt


def _read_recbole_items(p: Path, rejects: Rejects) -> list[tuple]:
    """Rows (ITEM_SCHEMA values + the record as a tab-joined line) of a RecBole atomic item
    file; records with the wrong field count go to `rejects` as MALFORMED."""
    table = read_atomic(p, ["item_id"], what="RecBole atomic item file")
    fields = [c for c in table.frame.columns if c != "row"]
    rows: list[tuple] = []
    seen: set[str] = set()
    for rec in table.frame.iter_rows(named=True):
        line = "\t".join(rec[c] for c in fields)
        item = rec["item_id"]
        if not item.strip():
            rejects.add(R_MISSING, rec["row"], line)
            continue
        if item in seen:
            rejects.add(R_DUP_ITEM, rec["row"], line)
            continue
        seen.add(item)
        rows.append((*_recbole_values(rec), rec["row"], line))
    for row, line in table.ragged.select("row", "line").iter_rows():
        rejects.add(MALFORMED, row, line)
    return rows


def _recbole_values(rec: dict[str, str]) -> tuple:
    """ITEM_SCHEMA values (without row) of one atomic-file record; absent fields -> ""."""
    categories = " > ".join(token_seq_values(rec.get("categories", "")))
    features = rec.get("features", rec.get("feature", ""))
    return (
        rec["item_id"],
        rec.get("title", ""),
        rec.get("description", ""),
        features,
        categories,
        rec.get("brand", ""),
        rec.get("price", ""),
    )


def read_items(
    path: str | Path, fmt: str, quarantine: Quarantine
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Items (ITEM_SCHEMA + the raw line in RAW_LINE_COL) and the loading stats."""
    check_format(fmt, METADATA_FORMATS, "metadata")
    p = require_file(path, "Amazon item metadata file")
    rejects = Rejects()
    if fmt == "auto" and is_atomic_header(first_line(p)):
        fmt = "recbole"
    if fmt == "recbole":
        rows = _read_recbole_items(p, rejects)
    else:
        rows, fmt = _read_json_items(p, fmt, rejects)
    return finish_table(p, fmt, rows, rejects, quarantine, "item", _EXPECT_ITEMS, ITEM_SCHEMA)


def load_item_metadata(
    path: str | Path,
    *,
    fmt: str = "auto",
    quarantine: Quarantine,
    stats: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """Item metadata (Amazon 2018 / 2023 JSON lines or a RecBole atomic item file) as
    ITEM_SCHEMA, in file order, one row per item id (repeats quarantined, first kept).

    `fmt` is "auto" (RecBole when the first line is a `name:type` header, else from the keys of
    the first JSON object) or one of METADATA_FORMATS. `stats`, when given, is filled like
    `load_reviews`'s. Raises InputError for a missing or empty file, no usable item, an
    undetectable format, a RecBole header without item_id or with broken quoting.
    """
    return public_table(read_items(path, fmt, quarantine), stats)
