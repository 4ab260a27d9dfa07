"""How cross-encoder logits become a run: the first stage's top `candidates` (the head) are
rescored, by the raw logit or, with a fusion weight w < 1, by
w * minmax(logit) + (1 - w) * minmax(first-stage score) per query; the first stage's ranks
`candidates`+1..k follow in first-stage order with synthetic scores below every reranked one
(lowest reranked score of the query minus the distance in ranks). The weight can be chosen on
the valid split (`choose_weight`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from shelflab.contract import ITEM_ID, QUERY_ID, RANK, SCORE, TEXT, add_rank
from shelflab.models.base import RUN_COLUMNS, empty_run
from shelflab.models.cross_encoder.encoder import ITEM_TEXT, QUERY_TEXT

FIRST_SCORE, LOGIT = "_first_score", "_logit"
WEIGHT_GRID = tuple(w / 10 for w in range(11))  # 0.0 (first stage alone) .. 1.0 (logit alone)


def minmax(col: str) -> pl.Expr:
    """Per-query min-max normalisation (0 when a query's values are all equal)."""
    lo, hi = pl.col(col).min().over(QUERY_ID), pl.col(col).max().over(QUERY_ID)
    return pl.when(hi > lo).then((pl.col(col) - lo) / (hi - lo)).otherwise(0.0)


def candidate_head(
    first: pl.DataFrame, queries: pl.DataFrame, items: pl.DataFrame, n: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the first-stage run as (query_id, item_id, _first_score, rank), its top-`n` rows in
    run order with the query and item texts joined, null where unknown)."""
    first = first.select(
        pl.col(QUERY_ID).cast(pl.String),
        pl.col(ITEM_ID).cast(pl.String),
        pl.col(SCORE).cast(pl.Float64).alias(FIRST_SCORE),
        RANK,
    )
    head = (
        first.filter(pl.col(RANK) <= n)
        .join(
            queries.select(QUERY_ID, pl.col(TEXT).alias(QUERY_TEXT)),
            on=QUERY_ID,
            how="left",
            maintain_order="left",
        )
        .join(
            items.select(ITEM_ID, pl.col(TEXT).alias(ITEM_TEXT)),
            on=ITEM_ID,
            how="left",
            maintain_order="left",
        )
    )
    return first, head


def head_texts(head: pl.DataFrame) -> tuple[list[str], list[str]]:
    """The head's (query texts, item texts), "" for unknown ones: what the reranker reads."""
    return head[QUERY_TEXT].fill_null("").to_list(), head[ITEM_TEXT].fill_null("").to_list()


def fuse(
    first: pl.DataFrame,
    head: pl.DataFrame,
    logits: Sequence[float],
    n: int,
    k: int,
    weight: float,
) -> pl.DataFrame:
    """The run (top k per query) of a head rescored with `logits` (in the head's order) fused
    by `weight`, then the first stage's ranks n+1..k below it (see the module docstring)."""
    if head.height == 0:
        return empty_run()
    head = head.select(QUERY_ID, ITEM_ID, RANK, FIRST_SCORE).with_columns(
        pl.Series(LOGIT, logits, dtype=pl.Float64)
    )
    if weight >= 1.0:
        head = head.with_columns(pl.col(LOGIT).alias(SCORE))
    else:
        head = head.with_columns(
            (weight * minmax(LOGIT) + (1.0 - weight) * minmax(FIRST_SCORE)).alias(SCORE)
        )
    tail = first.filter((pl.col(RANK) > n) & (pl.col(RANK) <= k))
    parts = [head.select(QUERY_ID, ITEM_ID, SCORE)]
    if tail.height:
        floor = head.group_by(QUERY_ID).agg(pl.col(SCORE).min().alias("_floor"))
        tail = tail.join(floor, on=QUERY_ID, how="left", maintain_order="left")
        parts.append(
            tail.select(
                QUERY_ID,
                ITEM_ID,
                (pl.col("_floor") - (pl.col(RANK) - n).cast(pl.Float64)).alias(SCORE),
            )
        )
    run = pl.concat(parts)
    return add_rank(run).filter(pl.col(RANK) <= k).select(RUN_COLUMNS)


def choose_weight(score_at: Callable[[float], float]) -> tuple[float, dict[float, float]]:
    """The best weight of WEIGHT_GRID by `score_at(weight)` (valid ndcg@10), the highest on
    ties (trust the reranker when it is as good), and every weight's score."""
    scores = {w: score_at(w) for w in WEIGHT_GRID}
    best = max(scores.values())
    return max(w for w, v in scores.items() if v == best), scores
