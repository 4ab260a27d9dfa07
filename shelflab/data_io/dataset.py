"""`SearchDataset`: what every search-relevance loader returns (see shelflab/contract.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from shelflab.contract import ITEM_ID, QUERY_ID, TEXT, validate_qrels, validate_queries
from shelflab.errors import InputError


@dataclass
class SearchDataset:
    """Queries, items and graded judgments of one product-search collection.

    - items:   item_id (str), text (str, raw, not normalised), plus source-specific columns
    - queries: query_id (str), text (str, raw), plus source-specific columns
    - qrels:   query_id (str), item_id (str), grade (float, 0 = not relevant)
    - stats:   counts gathered while loading (rows read, kept, quarantined per reason, ...)

    Text is kept raw; normalisation (shelflab.textnorm) happens in enrichment.
    """

    name: str
    items: pl.DataFrame
    queries: pl.DataFrame
    qrels: pl.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> SearchDataset:
        """Re-check the contract: queries/qrels valid, item ids unique, every judged query and
        item present. Raises InputError; returns self for chaining."""
        validate_queries(self.queries.select(QUERY_ID, TEXT), f"{self.name} queries")
        validate_qrels(self.qrels, f"{self.name} qrels")
        dup = self.items[ITEM_ID].is_duplicated()
        if dup.any():
            i = int(dup.arg_max())
            raise InputError(
                f"duplicate item_id {self.items[ITEM_ID][i]!r}",
                path=f"{self.name} items",
                row=i + 1,
                expected="one row per item_id",
            )
        for col, table, label in [
            (QUERY_ID, self.queries, "queries"),
            (ITEM_ID, self.items, "items"),
        ]:
            unknown = ~self.qrels[col].is_in(table[col].implode())
            if unknown.any():
                i = int(unknown.arg_max())
                raise InputError(
                    f"qrels {col} {self.qrels[col][i]!r} not in {label}",
                    path=f"{self.name} qrels",
                    row=i + 1,
                    expected=f"every judged {col} present in {label}",
                )
        return self

    def summary(self) -> dict[str, int]:
        return {
            "items": self.items.height,
            "queries": self.queries.height,
            "qrels": self.qrels.height,
        }


def stable_id(prefix: str, text: str, n_hex: int = 12) -> str:
    """`prefix` + the first `n_hex` hex digits of sha1(text as UTF-8): the same text gets the
    same id in any subset or ordering of the data."""
    return prefix + hashlib.sha1(text.encode("utf-8")).hexdigest()[:n_hex]


def stable_ids(texts: pl.Series, prefix: str, n_hex: int = 12) -> pl.Series:
    """`stable_id` over a Series; raises InputError if two distinct texts collide."""
    uniq = texts.unique(maintain_order=True)
    ids = [stable_id(prefix, t, n_hex) for t in uniq.to_list()]
    if len(set(ids)) != len(ids):  # 48-bit ids: astronomically unlikely, but never silent
        raise InputError(
            f"{n_hex}-hex-digit query id collision",
            path=str(texts.name),
            expected="distinct ids for distinct texts (raise n_hex)",
        )
    mapping = dict(zip(uniq.to_list(), ids, strict=True))
    return texts.replace_strict(mapping, return_dtype=pl.String)
