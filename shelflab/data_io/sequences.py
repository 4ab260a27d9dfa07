"""Loaders for next-item data: per-user item sequences, oldest first, and item text.

Inputs (plain or gzipped, detected from the magic bytes):
- **S3-Rec format** (`Beauty.txt`, CIKM 2020; also ICLRec, P5, TIGER-style work): one line per
  user, `user_id item_1 item_2 …` in time order, integer ids from 1, space-separated. Optional
  beside it: `<name>_item2attributes.json` (`{item_id: [attribute_id, …]}`) and
  `<name>_datamaps.json` (P5: `id2item` → ASIN, `id2attribute` → attribute name). Item text is
  built from the attribute names (for Beauty: categories and brand), since the files hold no
  titles.
- **UniSRec format**: see `shelflab.data_io.unisrec`.
- **Amazon 2018 reviews** (`sequences_from_reviews`): each user's reviewed items by time,
  after an iterative k-core filter, with the star rating the user gave each.

Outputs (`SequenceDataset`): `sequences` (user_id, items: list of item ids, oldest first; from
review files also `ratings` (contract.RATINGS), the user's rating of each item, aligned with
`items`) and `items` (item_id, text; text "" when the dataset has none), ids kept as strings.

Lines that cannot be used go to the quarantine with their line number and one reason:
`empty sequence`, `non-integer token`, `unknown item` (an id outside the item map, when one is
given), `duplicate user`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.contract import RATINGS
from shelflab.data_io.amazon_common import Rejects, first_line, raw_lines
from shelflab.data_io.csvutil import require_file
from shelflab.errors import InputError
from shelflab.quarantine import Quarantine

SEQUENCE_SCHEMA: dict[str, Any] = {"user_id": pl.String, "items": pl.List(pl.String)}
ITEM_TEXT_SCHEMA: dict[str, Any] = {"item_id": pl.String, "text": pl.String}
# catalog column of the S3-Rec and UniSRec loaders: an item's brand/category names (the labels
# of the MMoE's attribute task)
ITEM_ATTRIBUTES = "attributes"

R_EMPTY_SEQUENCE = "empty sequence"
R_NON_INTEGER = "non-integer token"
R_UNKNOWN_ITEM = "unknown item"
R_DUP_USER = "duplicate user"
_EXPECT_S3REC = "lines of integer ids `user item item …` (S3-Rec format)"


@dataclass
class SequenceDataset:
    """Sequences and item text of one dataset, with the loading stats."""

    name: str
    sequences: pl.DataFrame  # SEQUENCE_SCHEMA (+ RATINGS from review files)
    items: pl.DataFrame  # ITEM_TEXT_SCHEMA: the catalog (every item of the item map)
    stats: dict[str, Any] = field(default_factory=dict)
    # item_id -> source_item_id once relabelled (`data_io.relabel`); None: ids are the source's
    id_map: pl.DataFrame | None = None


def read_json_file(path: str | Path, what: str) -> Any:
    p = require_file(path, what)
    raw = b"".join(line + b"\n" for _, line in raw_lines(p))
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path=p, expected=what) from exc


def load_s3rec(
    path: str | Path,
    *,
    attributes: str | Path | None = None,
    datamaps: str | Path | None = None,
    quarantine: Quarantine,
    name: str | None = None,
) -> SequenceDataset:
    """An S3-Rec sequence file (+ optional attribute and datamaps files) as a SequenceDataset.

    The catalog is every item of `datamaps.id2item` when given (ids outside it are quarantined
    as `unknown item`), else every item in the sequences. Raises InputError for a missing or
    empty file or one without any usable line.
    """
    p = require_file(path, "S3-Rec sequence file")
    id2attr, known = _datamaps(datamaps)
    item_attrs = _item_attributes(attributes)
    rejects = Rejects()
    users: list[str] = []
    seqs: list[list[str]] = []
    seen: set[str] = set()
    known_ids = set(known) if known is not None else None
    for n, raw in raw_lines(p):
        line = raw.decode("utf-8", errors="replace")
        tokens = line.split()
        if not tokens:
            rejects.blank_lines += 1
            continue
        reason = _s3rec_reason(tokens, known_ids, seen)
        if reason is not None:
            rejects.add(reason, n, line)
            continue
        seen.add(tokens[0])
        users.append(tokens[0])
        seqs.append(tokens[1:])
    if not users:
        counts = ", ".join(f"{k}: {v}" for k, v in rejects.counts().items()) or "no data lines"
        raise InputError(f"no usable sequence ({counts})", path=p, expected=_EXPECT_S3REC)
    rejects.flush(quarantine, str(p))
    sequences = pl.DataFrame({"user_id": users, "items": seqs}, schema=SEQUENCE_SCHEMA)
    catalog = known if known is not None else _items_in(sequences)
    names = [[id2attr.get(a, a) for a in item_attrs.get(i, [])] for i in catalog]
    items = pl.DataFrame(
        {"item_id": catalog, "text": [", ".join(n) for n in names], ITEM_ATTRIBUTES: names},
        schema={**ITEM_TEXT_SCHEMA, ITEM_ATTRIBUTES: pl.List(pl.String)},
    )
    stats = {
        "path": str(p),
        "format": "s3rec",
        "users": sequences.height,
        "interactions": int(sequences["items"].list.len().sum()),
        "items": items.height,
        "items_with_text": int((items["text"] != "").sum()),
        "quarantined": rejects.counts(),
        "blank_lines": rejects.blank_lines,
    }
    return SequenceDataset(name or _stem(p), sequences, items, stats)


def _s3rec_reason(tokens: list[str], known: set[str] | None, seen: set[str]) -> str | None:
    if not all(t.isdigit() for t in tokens):
        return R_NON_INTEGER
    if len(tokens) == 1:  # a user id alone
        return R_EMPTY_SEQUENCE
    if tokens[0] in seen:
        return R_DUP_USER
    if known is not None and not known.issuperset(tokens[1:]):
        return R_UNKNOWN_ITEM
    return None


def _datamaps(path: str | Path | None) -> tuple[dict[str, str], list[str] | None]:
    """(attribute id -> name, catalog item ids in id order) from a P5 datamaps file."""
    if path is None:
        return {}, None
    maps = read_json_file(path, "a P5 datamaps JSON file (id2item, id2attribute)")
    if not isinstance(maps, dict) or not isinstance(maps.get("id2item"), dict):
        raise InputError("no id2item mapping", path=path, expected="a P5 datamaps JSON object")
    id2attr = {str(k): str(v) for k, v in (maps.get("id2attribute") or {}).items()}
    return id2attr, sorted(maps["id2item"], key=_id_order)


def _item_attributes(path: str | Path | None) -> dict[str, list[str]]:
    if path is None:
        return {}
    data = read_json_file(path, "an S3-Rec item2attributes JSON object {item_id: [ids]}")
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise InputError("not an object of lists", path=path, expected="{item_id: [ids]}")
    return {str(k): [str(a) for a in v] for k, v in data.items()}


def _id_order(item_id: str) -> tuple[int, str]:
    return (int(item_id), item_id) if item_id.isdigit() else (1 << 62, item_id)


def _items_in(sequences: pl.DataFrame) -> list[str]:
    return sorted(sequences["items"].explode().unique().to_list(), key=_id_order)


def _stem(p: Path) -> str:
    name = p.name
    for suffix in (".gz", ".txt", ".inter"):
        name = name.removesuffix(suffix)
    return name


def sequences_from_reviews(
    reviews: pl.DataFrame, *, k_core: int, name: str = "reviews"
) -> tuple[SequenceDataset, dict[str, int]]:
    """Per-user sequences from a reviews table (`user_id`, `item_id`, `timestamp`, `row`, and
    `rating` when known): each user's items by time (file order breaks ties), a user's repeat of
    the same item kept once (first time, with that review's rating), then an iterative k-core
    filter (users and items with >= k_core interactions). With `rating`, the sequences carry
    RATINGS aligned with `items`. Returns the dataset and the removed counts per reason."""
    rated = "rating" in reviews.columns
    inter = (
        reviews.select("user_id", "item_id", "timestamp", "row", *(["rating"] if rated else []))
        .sort("timestamp", "row")
        .unique(subset=["user_id", "item_id"], keep="first", maintain_order=True)
    )
    removed = {"repeated user-item": reviews.height - inter.height}
    before = inter.height
    while True:
        users = inter.group_by("user_id").len().filter(pl.col("len") >= k_core)
        items = inter.group_by("item_id").len().filter(pl.col("len") >= k_core)
        kept = inter.join(users.select("user_id"), on="user_id", how="semi").join(
            items.select("item_id"), on="item_id", how="semi"
        )
        if kept.height == inter.height:
            break
        inter = kept
    removed["k-core filter"] = before - inter.height
    lists = [pl.col("item_id").alias("items")]
    if rated:
        lists.append(pl.col("rating").cast(pl.Float64).alias(RATINGS))
    sequences = inter.group_by("user_id", maintain_order=True).agg(lists).sort("user_id")
    schema = {**SEQUENCE_SCHEMA, **({RATINGS: pl.List(pl.Float64)} if rated else {})}
    catalog = sorted(inter["item_id"].unique().to_list())
    items = pl.DataFrame({"item_id": catalog, "text": [""] * len(catalog)}, schema=ITEM_TEXT_SCHEMA)
    stats = {
        "format": "reviews",
        "k_core": k_core,
        "users": sequences.height,
        "interactions": inter.height,
        "items": len(catalog),
        "removed": removed,
    }
    return SequenceDataset(name, sequences.cast(schema), items, stats), removed


def sniff_sequence_format(path: str | Path) -> str:
    """ "unisrec" for an atomic .inter header, else "s3rec"."""
    line = first_line(require_file(path, "sequence file"))
    return "unisrec" if "item_id_list" in line else "s3rec"
