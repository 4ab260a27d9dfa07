"""Next-item track: the leave-one-out protocol as contract tables (queries / qrels / splits).

A user's sequence `i_1 … i_n` (oldest first, n >= `min_length`) gives three queries:

- test:  history `i_1 … i_{n-1}`, relevant item `i_n`
- valid: history `i_1 … i_{n-2}`, relevant item `i_{n-1}`
- train: history `i_1 … i_{n-3}` (empty when n = 3), relevant item `i_{n-2}`; a model trains
  on the whole train sequence `i_1 … i_{n-2}` = this history + its target

as in S3-Rec, SASRec and RecBole's `LS` split. Queries carry the history (`history`, a list of
item ids), not text; qrels have grade 1. Ranking is over the whole catalog (full ranking);
items already in the query's history are excluded from the ranking by default
(`exclude_history`, see `mask_history`), as in the S3-Rec / RecBole protocol, so a model is not
rewarded or punished for repeats (Amazon 5-core sequences hold almost none).
Users with fewer than `min_length` items are quarantined (`fewer than N items`), not dropped
silently. Sequences with a `ratings` column (review files: the star rating of each item) give
qrels a `rating` column, the rating the user gave the relevant item: a label for models (the
MMoE's rating task) that the harness does not read.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from shelflab.contract import RATING, RATINGS
from shelflab.quarantine import Quarantine

SPLITS = ("train", "valid", "test")
QUERY_SCHEMA = {"query_id": pl.String, "user_id": pl.String, "history": pl.List(pl.String)}


@dataclass
class LooTask:
    queries: pl.DataFrame  # query_id, user_id, history
    qrels: pl.DataFrame  # query_id, item_id, grade (+ rating, from rated sequences)
    splits: pl.DataFrame  # query_id, split

    def part(self, split: str) -> tuple[pl.DataFrame, pl.DataFrame]:
        ids = self.splits.filter(pl.col("split") == split).select("query_id")
        return (
            self.queries.join(ids, on="query_id", how="semi"),
            self.qrels.join(ids, on="query_id", how="semi"),
        )


def query_id(user_id: str, split: str) -> str:
    return f"{user_id}@{split}"


def leave_one_out(
    sequences: pl.DataFrame,
    *,
    min_length: int = 3,
    quarantine: Quarantine | None = None,
    source: str = "sequences",
) -> LooTask:
    """Contract tables for `sequences` (user_id, items). Raises ValueError for min_length < 3
    (valid and test each need a history)."""
    if min_length < 3:
        raise ValueError(f"min_length must be >= 3 (got {min_length})")
    lengths = sequences["items"].list.len()
    short = sequences.filter(lengths < min_length)
    if quarantine is not None and short.height:
        quarantine.add(
            short.with_columns(pl.col("items").list.join(" ")).with_row_index("row", offset=1),
            source=source,
            reason=f"fewer than {min_length} items",
        )
    seqs = sequences.filter(lengths >= min_length)
    rated = RATINGS in seqs.columns
    frames = []
    for split, back in (("test", 1), ("valid", 2), ("train", 3)):
        n = pl.col("items").list.len()
        frames.append(
            seqs.select(
                (pl.col("user_id") + query_id("", split)).alias("query_id"),
                "user_id",
                pl.col("items").list.slice(0, n - back).alias("history"),
                pl.col("items").list.get(n - back).alias("item_id"),
                pl.lit(split).alias("split"),
                *([pl.col(RATINGS).list.get(n - back).alias(RATING)] if rated else []),
            )
        )
    table = pl.concat(frames)
    return LooTask(
        queries=table.select(list(QUERY_SCHEMA)).cast(QUERY_SCHEMA),
        qrels=table.select(
            "query_id", "item_id", pl.lit(1.0).alias("grade"), *([RATING] if rated else [])
        ),
        splits=table.select("query_id", "split"),
    )
