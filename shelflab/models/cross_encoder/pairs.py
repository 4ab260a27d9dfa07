"""Training pairs of the cross-encoder: every relevant judgment (grade > 0) of a catalog item
(found by the first stage or not) + a seeded sample of up to `negatives` grade-0 first-stage
candidates per query (judged non-relevant or unjudged). Labels = grade / max train grade in
[0, 1] (graded BCE-with-logits targets)."""

from __future__ import annotations

import polars as pl

from shelflab.contract import GRADE, ITEM_ID, QUERY_ID, RANK, TEXT
from shelflab.models.cross_encoder.encoder import ITEM_TEXT, QUERY_TEXT

LABEL = "label"


def train_pairs(
    queries: pl.DataFrame,
    qrels: pl.DataFrame,
    cands: pl.DataFrame,
    items: pl.DataFrame,
    *,
    negatives: int,
    seed: int,
) -> pl.DataFrame:
    """(query_id, item_id, grade, label, query text, item text) of the `queries`: all their
    relevant judgments on catalog items + up to `negatives` sampled grade-0 `cands` (labelled
    first-stage candidates) per query, sorted by (query_id, item_id)."""
    import numpy as np

    judged = qrels.select(
        pl.col(QUERY_ID).cast(pl.String),
        pl.col(ITEM_ID).cast(pl.String),
        pl.col(GRADE).cast(pl.Float64),
    ).unique([QUERY_ID, ITEM_ID], keep="first", maintain_order=True)
    pos = judged.filter(
        (pl.col(GRADE) > 0)
        & pl.col(QUERY_ID).is_in(queries[QUERY_ID].implode())
        & pl.col(ITEM_ID).is_in(items[ITEM_ID].implode())
    )
    neg = cands.filter(pl.col(GRADE) <= 0).select(QUERY_ID, ITEM_ID, RANK, GRADE)
    rng = np.random.default_rng(seed)
    neg = (
        neg.sort(QUERY_ID, RANK)
        .with_columns(pl.Series("_key", rng.random(neg.height)))
        .sort(QUERY_ID, "_key")
        .group_by(QUERY_ID, maintain_order=True)
        .head(negatives)
        .select(QUERY_ID, ITEM_ID, GRADE)
    )
    pairs = pl.concat([pos.select(QUERY_ID, ITEM_ID, GRADE), neg])
    if pairs.height == 0:
        return pairs
    top = pos[GRADE].max() if pos.height else 1.0
    return (
        pairs.with_columns((pl.col(GRADE) / top).clip(0.0, 1.0).alias(LABEL))
        .join(
            queries.select(QUERY_ID, pl.col(TEXT).alias(QUERY_TEXT)),
            on=QUERY_ID,
            how="left",
        )
        .join(items.select(ITEM_ID, pl.col(TEXT).alias(ITEM_TEXT)), on=ITEM_ID, how="left")
        .sort(QUERY_ID, ITEM_ID)
    )
