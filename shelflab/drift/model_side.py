"""Model side of a drift report: does the model still find the reviewed products in a new batch?

The batch's reviews become review -> item queries exactly as in the pipeline (one query per
distinct review, every item it was posted under relevant). Reviews of items outside the model's
catalog cannot be judged and are counted, not scored. The batch's per-query metric is compared with
the model's test-split per-query metric: paired (randomisation test on the common queries) when
the batch holds the test queries themselves, else as two independent samples (permutation test on
the difference of means, bootstrap CI of the difference resampling each side).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from shelflab.evaluation.harness import evaluate
from shelflab.evaluation.significance import bootstrap_ci, paired_test
from shelflab.reviews.track import review_queries, with_query_ids


def batch_task(
    reviews: pl.DataFrame,
    catalog: pl.Series,
    fields: Sequence[str] = ("summary", "body"),
    separator: str = ". ",
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """(queries, qrels, counts) for the batch reviews whose item is in `catalog`."""
    if "query_id" not in reviews.columns:
        reviews = with_query_ids(reviews)
    known = reviews.filter(pl.col("item_id").is_in(catalog.implode()))
    queries, qrels = review_queries(known, fields, separator)
    counts = {
        "batch_reviews": reviews.height,
        "reviews_of_unknown_items": reviews.height - known.height,
        "queries": queries.height,
    }
    return queries, qrels, counts


def per_query_on_batch(
    model: Any,
    queries: pl.DataFrame,
    qrels: pl.DataFrame,
    metrics: Sequence[str],
    k: int,
    relevance_threshold: float = 1.0,
) -> pl.DataFrame:
    run = model.retrieve(queries.select("query_id", "text"), k)
    result = evaluate(qrels, run, list(metrics), relevance_threshold=relevance_threshold)
    return result.per_query.select("query_id", *metrics)


def compare_with_test(
    batch: pl.DataFrame,
    test: pl.DataFrame,
    metric: str,
    *,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Batch vs test per-query `metric`: means with CIs, delta (batch - test), its CI, p-value and
    whether it is a significant drop."""
    b = batch[metric].to_numpy().astype(float)
    t = test[metric].to_numpy().astype(float)
    same = set(batch["query_id"].to_list()) == set(test["query_id"].to_list())
    if same:
        r = paired_test(batch, test, n_resamples=n_resamples, seed=seed, metric=metric)
        delta, low, high, p, method = r.delta, r.ci_low, r.ci_high, r.p_value, "paired"
    else:
        delta, low, high, p = two_sample(b, t, n_resamples, confidence, seed)
        method = "two-sample permutation"
    bm, bl, bh = bootstrap_ci(
        b, n_resamples=min(n_resamples, 2000), confidence=confidence, seed=seed
    )
    tm, tl, th = bootstrap_ci(
        t, n_resamples=min(n_resamples, 2000), confidence=confidence, seed=seed
    )
    return {
        "metric": metric,
        "batch": {"mean": bm, "ci": [bl, bh], "n": int(b.size)},
        "test": {"mean": tm, "ci": [tl, th], "n": int(t.size)},
        "delta": delta,
        "delta_ci": [low, high],
        "p_value": p,
        "method": method,
        "significant_drop": bool(delta < 0 and p < alpha),
    }


def two_sample(
    a: np.ndarray, b: np.ndarray, n_resamples: int, confidence: float, seed: int
) -> tuple[float, float, float, float]:
    """(mean(a) - mean(b), CI low, CI high, two-sided permutation p-value)."""
    rng = np.random.default_rng(seed)
    observed = float(a.mean() - b.mean())
    pooled = np.concatenate([a, b])
    hits = 0
    for _ in range(n_resamples):
        perm = rng.permutation(pooled)
        hits += abs(perm[: a.size].mean() - perm[a.size :].mean()) >= abs(observed) - 1e-12
    deltas = np.array(
        [
            rng.choice(a, a.size).mean() - rng.choice(b, b.size).mean()
            for _ in range(min(n_resamples, 2000))
        ]
    )
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return observed, float(low), float(high), (hits + 1) / (n_resamples + 1)
