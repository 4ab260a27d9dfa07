"""Confidence intervals and paired significance tests over per-query scores.

- `bootstrap_ci`: percentile bootstrap of the mean.
- `paired_test`: two-sided test of mean(a - b) = 0 over the same queries:
  * "randomization": Fisher's paired randomisation (sign-flip) test: each per-query difference
    keeps or flips its sign with probability 1/2; exact enumeration when 2^n <= n_resamples.
  * "bootstrap": Sakai's (2006) paired bootstrap test: the studentised mean difference against
    bootstrap resamples of the mean-shifted differences (the null distribution).
  Monte Carlo p-values are (1 + #{|T*| >= |T|}) / (1 + B), never 0 (Phipson & Smyth 2010).
  The confidence interval on the delta is a percentile bootstrap of mean(a - b).
- `summarize`: mean and bootstrap CI of each metric column of a per-query table.

All resampling is vectorised (chunks of resamples x queries) and seeded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from shelflab.contract import QUERY_ID
from shelflab.errors import ConfigError, InputError

__all__ = ["METHODS", "PairedResult", "bootstrap_ci", "paired_test", "summarize"]

METHODS = ("randomization", "bootstrap")
_CHUNK_CELLS = 2_000_000  # resamples x queries drawn at once

ArrayLike = Sequence[float] | np.ndarray | pl.Series


@dataclass(frozen=True)
class PairedResult:
    mean_a: float
    mean_b: float
    delta: float  # mean_a - mean_b
    ci_low: float  # bootstrap CI of delta
    ci_high: float
    p_value: float  # two-sided
    n: int  # paired queries
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_ci(
    values: ArrayLike, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap confidence interval of the mean."""
    x = _as_values(values, "values")
    _check_params(n_resamples, confidence)
    rng = np.random.default_rng(seed)
    low, high = _percentiles(_bootstrap_means(x, n_resamples, rng), confidence)
    return float(x.mean()), low, high


def paired_test(
    a: ArrayLike | pl.DataFrame,
    b: ArrayLike | pl.DataFrame,
    method: str = "randomization",
    n_resamples: int = 10_000,
    seed: int = 0,
    *,
    metric: str | None = None,
    confidence: float = 0.95,
) -> PairedResult:
    """Two-sided paired test of mean(a) = mean(b).

    a, b: per-query scores, either aligned arrays (same length, same query order) or per-query
    DataFrames (query_id + metric columns, as `EvalResult.per_query`), joined on query_id; with
    several metric columns name one with `metric`. Both must cover the same queries."""
    if method not in METHODS:
        raise ConfigError(f"unknown test method {method!r} (expected one of: {', '.join(METHODS)})")
    _check_params(n_resamples, confidence)
    x, y = _paired_values(a, b, metric)
    n = len(x)
    if n < 2:
        raise InputError(f"a paired test needs at least 2 queries, got {n}")
    d = x - y
    rng = np.random.default_rng(seed)
    if method == "randomization":
        p = _randomization_p(d, n_resamples, rng)
    else:
        p = _bootstrap_p(d, n_resamples, rng)
    low, high = _percentiles(_bootstrap_means(d, n_resamples, rng), confidence)
    return PairedResult(
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        delta=float(d.mean()),
        ci_low=low,
        ci_high=high,
        p_value=p,
        n=n,
        method=method,
    )


def summarize(
    per_query: pl.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pl.DataFrame:
    """One row per metric: metric, mean, ci_low, ci_high, n (bootstrap CI of the mean)."""
    names = _metric_columns(per_query, metrics)
    rows = []
    for name in names:
        mean, low, high = bootstrap_ci(per_query[name], n_resamples, confidence, seed)
        rows.append((name, mean, low, high, per_query.height))
    return pl.DataFrame(
        rows,
        schema={
            "metric": pl.String,
            "mean": pl.Float64,
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
            "n": pl.Int64,
        },
        orient="row",
    )


# --- internals -------------------------------------------------------------------------------


def _metric_columns(per_query: pl.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    available = [c for c in per_query.columns if c != QUERY_ID]
    if metrics is None:
        return available
    missing = [m for m in metrics if m not in available]
    if missing:
        raise ConfigError(
            f"metric(s) {', '.join(missing)} not in the per-query table "
            f"(available: {', '.join(available) or 'none'})"
        )
    return list(metrics)


def _as_values(values: ArrayLike, name: str) -> np.ndarray:
    x = np.asarray(values.to_numpy() if isinstance(values, pl.Series) else values, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"{name} must be one score per query (1-D), got shape {x.shape}")
    if len(x) == 0:
        raise InputError(f"{name} is empty", expected="at least one per-query score")
    if not np.isfinite(x).all():
        i = int(np.flatnonzero(~np.isfinite(x))[0])
        raise InputError(f"{name} has a non-finite score {x[i]} at position {i}")
    return x


def _paired_values(
    a: ArrayLike | pl.DataFrame, b: ArrayLike | pl.DataFrame, metric: str | None
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, pl.DataFrame) != isinstance(b, pl.DataFrame):
        raise InputError("pass both a and b as per-query DataFrames, or both as arrays")
    if not isinstance(a, pl.DataFrame):
        x, y = _as_values(a, "a"), _as_values(b, "b")
        if len(x) != len(y):
            raise InputError(f"a has {len(x)} scores but b has {len(y)}", expected="paired scores")
        return x, y
    assert isinstance(b, pl.DataFrame)
    name = _single_metric(a, b, metric)
    for side, df in (("a", a), ("b", b)):
        if QUERY_ID not in df.columns:
            raise InputError(f"{side} has no {QUERY_ID} column", expected="a per-query table")
        if df[QUERY_ID].is_duplicated().any():
            raise InputError(f"{side} has duplicate {QUERY_ID}s", expected="one row per query")
    joined = a.select(QUERY_ID, pl.col(name).alias("a")).join(
        b.select(QUERY_ID, pl.col(name).alias("b")), on=QUERY_ID, how="full", coalesce=True
    )
    only_a = int(joined["b"].is_null().sum())
    only_b = int(joined["a"].is_null().sum())
    if only_a or only_b:
        raise InputError(
            f"a and b were scored on different queries ({only_a} only in a, {only_b} only in b)",
            expected="per-query scores of the same queries (same qrels)",
        )
    joined = joined.sort(QUERY_ID)
    return _as_values(joined["a"], "a"), _as_values(joined["b"], "b")


def _single_metric(a: pl.DataFrame, b: pl.DataFrame, metric: str | None) -> str:
    if metric is not None:
        for side, df in (("a", a), ("b", b)):
            if metric not in df.columns:
                raise ConfigError(
                    f"metric {metric!r} not in {side} (columns: {', '.join(df.columns)})"
                )
        return metric
    cols = [c for c in a.columns if c != QUERY_ID]
    if len(cols) != 1:
        raise ConfigError(f"name the metric to compare (columns: {', '.join(cols) or 'none'})")
    return cols[0]


def _check_params(n_resamples: int, confidence: float) -> None:
    if not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise ConfigError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence!r}")


def _chunks(n_resamples: int, n: int) -> list[int]:
    size = max(1, _CHUNK_CELLS // max(n, 1))
    return [min(size, n_resamples - i) for i in range(0, n_resamples, size)]


def _bootstrap_means(x: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = len(x)
    parts = [x[rng.integers(0, n, size=(c, n))].mean(axis=1) for c in _chunks(n_resamples, n)]
    return np.concatenate(parts)


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _at_least(stats: np.ndarray, observed: float) -> int:
    """How many |statistics| reach |observed| (with a relative tolerance for float noise)."""
    tol = 1e-12 * max(1.0, abs(observed))
    return int((np.abs(stats) >= abs(observed) - tol).sum())


def _randomization_p(d: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    n = len(d)
    observed = float(d.mean())
    if n <= 20 and 2**n <= n_resamples:  # all 2^n sign patterns: exact p-value
        patterns = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        stats = ((1 - 2 * patterns) * d).mean(axis=1)
        return _at_least(stats, observed) / 2**n
    count = 0
    for c in _chunks(n_resamples, n):
        signs = rng.integers(0, 2, size=(c, n), dtype=np.int8) * 2 - 1
        count += _at_least((signs * d).mean(axis=1), observed)
    return (1 + count) / (1 + n_resamples)


def _t_stat(mean: np.ndarray, sd: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / math.sqrt(n))
    return np.where(sd > 0, t, np.where(mean == 0, 0.0, np.copysign(np.inf, mean)))


def _bootstrap_p(d: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    n = len(d)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:  # all differences equal: no difference at all, or a constant one
        return 1.0 if mean == 0 else 1.0 / (1 + n_resamples)
    observed = float(_t_stat(np.array([mean]), np.array([sd]), n)[0])
    w = d - mean  # the null hypothesis holds for w
    count = 0
    for c in _chunks(n_resamples, n):
        sample = w[rng.integers(0, n, size=(c, n))]
        t = _t_stat(sample.mean(axis=1), sample.std(axis=1, ddof=1), n)
        count += _at_least(t, observed)
    return (1 + count) / (1 + n_resamples)
