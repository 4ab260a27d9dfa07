"""Item ids that carry no order: a seeded random permutation of a next-item dataset's items.

The S3-Rec files number items in order of first appearance in the file, so a raw id says
when an item first showed up: "rank the ids just above the highest id of the history" reaches
NDCG@10 ~0.045 on Beauty, above published SASRec and TIGER, without learning anything. Any
model or tie-break that touches id order could be inflated that way. Ingest therefore
relabels every item (data.relabel_seed, on by default) with `i` + a zero-padded number drawn
by a seeded permutation, and keeps the map back to the source ids (`ID_MAP_SCHEMA`).

Ties between equal scores are ranked by item_id (descending, trec_eval's order, see
`contract.add_rank`) and models index the catalog in item_id order: on relabelled ids both
follow the seeded permutation, i.e. a seeded random order unrelated to the source ids.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shelflab.data_io.sequences import SequenceDataset
from shelflab.errors import InputError

ID_MAP_SCHEMA: dict[str, Any] = {"item_id": pl.String, "source_item_id": pl.String}
PREFIX = "i"  # relabelled ids never look like the source's integers, so they cannot be mixed


def relabel_items(ds: SequenceDataset, seed: int) -> SequenceDataset:
    """The dataset with every item id replaced; its `id_map` maps item_id -> source_item_id.

    The new ids are PREFIX + zero-padded 1..n (lexical order = numeric order), assigned to the
    source ids in sorted order through a permutation drawn from `seed`: the same files and
    seed give the same ids, and the file's order of items plays no part. The catalog comes
    back sorted by the new id."""
    source = ds.items["item_id"].sort()
    used = ds.sequences["items"].explode().drop_nulls().unique()
    outside = used.filter(~used.is_in(source.implode()))
    if outside.len():
        raise InputError(
            f"{outside.len()} item id(s) of the sequences are not in the catalog, e.g. "
            f"{outside.sort()[0]!r}",
            path=ds.stats.get("path", ds.name),
            expected="every sequence item in the item table (the loaders' catalog)",
        )
    n = source.len()
    width = len(str(max(n, 1)))
    numbers = np.random.default_rng(seed).permutation(n) + 1
    new_ids = [f"{PREFIX}{k:0{width}d}" for k in numbers.tolist()]
    id_map = pl.DataFrame(
        {"item_id": new_ids, "source_item_id": source}, schema=ID_MAP_SCHEMA
    ).sort("item_id")
    old, new = id_map["source_item_id"], id_map["item_id"]
    sequences = ds.sequences.with_columns(
        pl.col("items").list.eval(pl.element().replace_strict(old, new, return_dtype=pl.String))
    )
    items = (
        ds.items.with_columns(pl.col("item_id").replace_strict(old, new, return_dtype=pl.String))
        .sort("item_id")
        .select(ds.items.columns)
    )
    stats = {**ds.stats, "relabel_seed": seed}
    return dataclasses.replace(ds, sequences=sequences, items=items, stats=stats, id_map=id_map)


# --- the edges: users speak the source's ids ------------------------------------------------
SOURCE_IDS_FILE = "source_ids.parquet"  # the id map, copied into a next-item index directory


def read_id_map(path: Path) -> pl.DataFrame | None:
    """The id map at `path` (an ID_MAP_SCHEMA parquet), None when there is none."""
    if not path.is_file():
        return None
    id_map = pl.read_parquet(path)
    if id_map.schema != pl.Schema(ID_MAP_SCHEMA):
        raise InputError(
            f"columns {dict(id_map.schema)}", path=path, expected=f"columns {ID_MAP_SCHEMA}"
        )
    return id_map


def translate_ids(frame: pl.DataFrame, column: str, id_map: pl.DataFrame, to: str) -> pl.DataFrame:
    """`frame` with the item ids of `column` (an id or a list of ids) mapped to `to` ("source"
    or "internal"). An id the map does not know becomes null in an id column and is left out of
    a list (a history item outside the catalog, which the model would skip anyway)."""
    if to not in ("source", "internal"):
        raise ValueError(f"to must be 'source' or 'internal', got {to!r}")
    old, new = ("item_id", "source_item_id") if to == "source" else ("source_item_id", "item_id")
    swap = pl.element() if frame.schema[column] == pl.List(pl.String) else pl.col(column)
    mapped = swap.replace_strict(id_map[old], id_map[new], default=None, return_dtype=pl.String)
    if frame.schema[column] == pl.List(pl.String):
        return frame.with_columns(pl.col(column).list.eval(mapped.drop_nulls()))
    return frame.with_columns(mapped.alias(column))
