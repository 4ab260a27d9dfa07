"""Scoring one split of a bench run: the harness's per-query values and bootstrap CIs."""

from __future__ import annotations

import polars as pl

from shelflab.evaluation.harness import evaluate
from shelflab.evaluation.significance import summarize


def split_scores(
    qrels: pl.DataFrame, run: pl.DataFrame, metrics: list[str]
) -> tuple[dict[str, list[float]], pl.DataFrame]:
    """({metric: [mean, ci_low, ci_high]} over 1,000 seeded resamples, per-query table)."""
    res = evaluate(qrels, run, metrics, 1.0)
    table = summarize(res.per_query, metrics, n_resamples=1000, seed=0)
    means = {
        r["metric"]: [r["mean"], r["ci_low"], r["ci_high"]] for r in table.iter_rows(named=True)
    }
    return means, res.per_query
