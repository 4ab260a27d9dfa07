"""The labels of the MMoE's tasks after the first (`next_item` needs none: the next item itself)
and the rating task's valid scores.

- attribute: does a candidate share a brand/category with the next item (the catalog's
  `attributes` column, filled by the S3-Rec and UniSRec loaders);
- rating: the star rating the user gave the next item (the qrels' `rating` column, which
  review-file sequences carry), scaled to [0, 1] over the rating scale, on the candidate that
  is the next item only (NaN: no label).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from shelflab.contract import GRADE, ITEM_ID, QUERY_ID, RATING
from shelflab.errors import ConfigError
from shelflab.models.base import TrainData

ATTRIBUTES = "attributes"  # catalog column: list of an item's brand/category names


def attribute_matrix(train: TrainData, item_ids: list[str]):
    """(items x attributes) sparse 0/1 matrix from the catalog's `attributes` column."""
    import scipy.sparse as sp

    if ATTRIBUTES not in train.items.columns:
        raise ConfigError(
            "task 'attribute' needs the catalog's 'attributes' column (brand/category names), "
            "which the s3rec and unisrec loaders fill; drop the task for this dataset"
        )
    by_id = dict(zip(train.items[ITEM_ID].cast(pl.String).to_list(),
                     train.items[ATTRIBUTES].to_list(), strict=True))  # fmt: skip
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for r, item in enumerate(item_ids):
        for a in by_id.get(item) or []:
            rows.append(r)
            cols.append(vocab.setdefault(a, len(vocab)))
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(item_ids), len(vocab) or 1))


def shares_attribute(attrs, cand: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(B, C) bool: candidate and target share an attribute (False for padding/unknown)."""
    out = np.zeros(cand.shape, dtype=bool)
    for r in range(len(cand)):
        if target[r] < 0:
            continue
        ok = cand[r] >= 0
        hits = attrs[cand[r][ok]] @ attrs[target[r]].T
        out[r, ok] = np.asarray(hits.todense()).ravel() > 0
    return out


def target_ratings(queries: pl.DataFrame, qrels: pl.DataFrame) -> list[float]:
    """The rating of each query's relevant item, in the order (and with the inner join) of
    `sequential.training_sequences`; NaN where the rating is missing."""
    if RATING not in qrels.columns:
        raise ConfigError(
            "task 'rating' needs the rating the user gave each next item (qrels column "
            "'rating'), which review-file sequences (data.format: amazon_reviews) carry; drop "
            "the task for this dataset"
        )
    rated = (
        qrels.filter(pl.col(GRADE) > 0)
        .group_by(QUERY_ID, maintain_order=True)
        .agg(pl.col(RATING).cast(pl.Float64).last())
    )
    joined = queries.join(rated, on=QUERY_ID, how="inner", maintain_order="left")
    return joined[RATING].fill_null(float("nan")).to_list()


def rating_range(ratings: list[float], lo: float, hi: float) -> dict[str, float]:
    """The scale of the labels (lo, hi) and the mean of the known training ratings; a rating
    outside the scale is an error, not a label beyond [0, 1]."""
    known = np.asarray(ratings, dtype=np.float64)
    known = known[~np.isnan(known)]
    if not len(known):
        raise ConfigError("task 'rating': no training user has a rating for the next item")
    outside = known[(known < lo) | (known > hi)]
    if len(outside):
        raise ConfigError(
            f"task 'rating': {len(outside)} training rating(s) outside rating_scale "
            f"[{lo:g}, {hi:g}], e.g. {outside[0]:g}"
        )
    return {"lo": lo, "hi": hi, "mean": float(known.mean())}


def rating_labels(is_next: np.ndarray, stars: list[float], scale: dict[str, float]) -> np.ndarray:
    """(B, C) float32: the scaled rating at the candidate that is the next item (`is_next`,
    at most one per row), NaN elsewhere and on a row whose next item is not a candidate."""
    lo, hi = scale["lo"], scale["hi"]
    scaled = (np.asarray(stars, dtype=np.float64) - lo) / max(hi - lo, 1e-9)
    out = np.full(is_next.shape, np.nan, dtype=np.float32)
    out[is_next] = np.repeat(scaled, is_next.sum(axis=1))
    return out


def mean_rating_logit(scale: dict[str, float]) -> float:
    """The logit whose predicted rating is the training mean: the rating tower's starting bias,
    so that it starts as the mean-rating baseline instead of mid-scale, which one label per
    user moves only slowly."""
    prior = (scale["mean"] - scale["lo"]) / (scale["hi"] - scale["lo"])
    prior = min(max(prior, 1e-3), 1 - 1e-3)
    return float(np.log(prior / (1 - prior)))


def rating_scores(
    labels: np.ndarray, logits: np.ndarray, scale: dict[str, float]
) -> dict[str, float]:
    """RMSE and MAE in stars of the predicted rating lo + (hi - lo) * sigmoid(logit) where a
    label exists, beside the RMSE of always predicting the training mean."""
    has = ~np.isnan(labels)
    if not has.any():
        return {}
    lo, hi = scale["lo"], scale["hi"]
    truth = lo + (hi - lo) * labels[has].astype(np.float64)
    pred = lo + (hi - lo) / (1.0 + np.exp(-logits[has].astype(np.float64)))
    return {
        "rating.rmse": float(np.sqrt(np.mean((pred - truth) ** 2))),
        "rating.mae": float(np.mean(np.abs(pred - truth))),
        "rating.rmse_train_mean": float(np.sqrt(np.mean((scale["mean"] - truth) ** 2))),
        "rating.users": float(has.sum()),
    }
