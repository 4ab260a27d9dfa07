"""Candidates of a first stage and the dense features of each (user, candidate) pair, as the
MMoE reads them: fixed-width (queries x candidates) arrays, -1 where a query has fewer; and
the run those arrays' scores give."""

from __future__ import annotations

import numpy as np
import polars as pl

from shelflab.contract import ITEM_ID, QUERY_ID, RANK, SCORE, add_rank

# the dense inputs of a pair, in column order
DENSE_FEATURES = (
    "first_stage_score",  # the first stage's own score of the candidate for this history
    "first_stage_rank",  # 1 / log2(rank + 1)
    "popularity",  # log(1 + training count), scaled to [0, 1]
    "item_to_item",  # the item-to-item component's score, over the query's best candidate
    "text_cosine",  # cosine of the history's mean MiniLM vector and the candidate's
)


def top_candidates(scores: np.ndarray, depth: int) -> np.ndarray:
    """(B, depth) column indices of each row's best scores, best first (-inf never: -1)."""
    depth = min(depth, scores.shape[1])
    part = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    cand = np.take_along_axis(part, order, axis=1)
    cand[~np.isfinite(np.take_along_axis(scores, cand, axis=1))] = -1
    return cand


def dense_features(
    cand: np.ndarray,
    ranks: np.ndarray,
    first_scores: np.ndarray,
    i2i_scores: np.ndarray | None,
    popularity: np.ndarray,
    text_unit: np.ndarray,
    histories: list[list[int]],
) -> np.ndarray:
    """(B, C, len(DENSE_FEATURES)) float32 for candidates `cand` (column indices, -1 = none)
    at 1-based first-stage `ranks`; `first_scores`/`i2i_scores`: (B, n_items) score matrices;
    `popularity`: scaled per item; `text_unit`: L2-normalised item text vectors."""
    valid = cand >= 0
    col = np.where(valid, cand, 0)
    rows = np.arange(len(cand))[:, None]
    first = first_scores[rows, col]
    first = np.where(np.isfinite(first), first, 0.0)
    i2i = np.zeros_like(first)
    if i2i_scores is not None:
        i2i = i2i_scores[rows, col]
        i2i = i2i / np.maximum(np.where(valid, i2i, 0).max(axis=1, keepdims=True), 1e-9)
    user = np.stack([text_unit[h].mean(axis=0) if h else np.zeros(text_unit.shape[1])
                     for h in histories])  # fmt: skip
    cosine = np.einsum("bd,bcd->bc", user, text_unit[col])
    out = np.stack(
        [first, 1.0 / np.log2(ranks + 1.0), popularity[col], i2i, cosine], axis=-1
    ).astype(np.float32)
    out[~valid] = 0.0
    return out


def candidates_run(
    qids: list[str], cand: np.ndarray, score: np.ndarray, item_ids: list[str], k: int
) -> pl.DataFrame:
    """The top `k` of each query's candidates (`cand`: (B, C) item indices, -1 = none) by
    `score` (B, C), as a run (ties by the contract's rule)."""
    keep = cand >= 0
    names = np.asarray(item_ids, dtype=object)
    run = pl.DataFrame(
        {
            QUERY_ID: np.repeat(np.asarray(qids, dtype=object), keep.sum(axis=1)),
            ITEM_ID: names[cand[keep]],
            SCORE: score[keep].astype(np.float64),
        },
        schema={QUERY_ID: pl.String, ITEM_ID: pl.String, SCORE: pl.Float64},
    )
    return add_rank(run).filter(pl.col(RANK) <= k).cast({RANK: pl.Int64})
