"""Pure run-fusion functions (polars in, contract run out).

- `rrf`: score(q, d) = sum_i w_i / (rrf_k + rank_i(q, d)); a run missing d adds nothing.
- `weighted`: score(q, d) = sum_i w_i * norm_i(q, d), each run's scores normalised per query:
  "minmax" -> (s - min) / (max - min), a constant run -> 1.0;
  "zscore" -> (s - mean) / std (population std), a constant run -> 0.0.
  An item a run did not retrieve for q counts as min(that run's lowest normalised score for
  q, 0): 0 for minmax (the usual CombSUM), the run's minimum z for zscore; a run with
  nothing for q adds 0.
Every output is ranked with `contract.add_rank` (ties: item_id descending, like trec_eval).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from shelflab.contract import ITEM_ID, QUERY_ID, RANK, SCORE, SMALL_RUN, add_rank
from shelflab.errors import ConfigError
from shelflab.models.base import RUN_COLUMNS

NORMS = ("minmax", "zscore")
METHODS = ("rrf", "weighted")


def _ranked(run: pl.DataFrame) -> pl.DataFrame:
    run = run.with_columns(
        pl.col(QUERY_ID).cast(pl.String),
        pl.col(ITEM_ID).cast(pl.String),
        pl.col(SCORE).cast(pl.Float64),
    )
    if RANK not in run.columns:
        run = add_rank(run)
    return run.select(QUERY_ID, ITEM_ID, SCORE, pl.col(RANK).cast(pl.Int64))


def _weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise ConfigError(f"fusion: {len(weights)} weights for {n} runs")
    return [float(w) for w in weights]


def _finish(fused: pl.DataFrame, k: int | None) -> pl.DataFrame:
    run = add_rank(fused.select(QUERY_ID, ITEM_ID, SCORE))
    if k is not None:
        run = run.filter(pl.col(RANK) <= k)
    return run.select(RUN_COLUMNS)


def normalize(run: pl.DataFrame, method: str = "minmax") -> pl.DataFrame:
    """Per-query score normalisation; keeps the other columns (and the ranks) as they are."""
    s = pl.col(SCORE).cast(pl.Float64)
    if method == "minmax":
        lo, hi = s.min().over(QUERY_ID), s.max().over(QUERY_ID)
        expr = pl.when(hi > lo).then((s - lo) / (hi - lo)).otherwise(1.0)
    elif method == "zscore":
        mean, std = s.mean().over(QUERY_ID), s.std(ddof=0).over(QUERY_ID)
        expr = pl.when(std > 0).then((s - mean) / std).otherwise(0.0)
    else:
        raise ConfigError(
            f"fusion: unknown normalisation {method!r} (expected one of: {', '.join(NORMS)})"
        )
    return run.with_columns(expr.alias(SCORE))


def rrf(
    runs: Sequence[pl.DataFrame],
    rrf_k: float = 60,
    weights: Sequence[float] | None = None,
    k: int | None = None,
) -> pl.DataFrame:
    """Reciprocal-rank fusion (Cormack et al. 2009) of runs' `rank` columns."""
    w = _weights(weights, len(runs))
    parts = [
        _ranked(r).select(QUERY_ID, ITEM_ID, (wi / (rrf_k + pl.col(RANK))).alias(SCORE))
        for r, wi in zip(runs, w, strict=True)
    ]
    if not parts:
        raise ConfigError("fusion: no runs")
    fused = pl.concat(parts).group_by(QUERY_ID, ITEM_ID).agg(pl.col(SCORE).sum())
    return _finish(fused, k)


def weighted(
    runs: Sequence[pl.DataFrame],
    weights: Sequence[float] | None = None,
    norm: str = "minmax",
    k: int | None = None,
) -> pl.DataFrame:
    """Weighted sum of per-query normalised scores (CombSUM with weights)."""
    w = _weights(weights, len(runs))
    if not runs:
        raise ConfigError("fusion: no runs")
    normed = [normalize(_ranked(r), norm).select(QUERY_ID, ITEM_ID, SCORE) for r in runs]
    pairs = pl.concat([n.select(QUERY_ID, ITEM_ID) for n in normed]).unique()
    total = pl.lit(0.0)
    for i, n in enumerate(normed):
        col, floor = f"_s{i}", f"_f{i}"
        pairs = pairs.join(n.rename({SCORE: col}), on=[QUERY_ID, ITEM_ID], how="left").join(
            n.group_by(QUERY_ID).agg(pl.min_horizontal(pl.col(SCORE).min(), 0.0).alias(floor)),
            on=QUERY_ID,
            how="left",
        )
        total = total + w[i] * pl.coalesce(pl.col(col), pl.col(floor), pl.lit(0.0))
    return _finish(pairs.with_columns(total.alias(SCORE)), k)


def _one_query(runs: Sequence[pl.DataFrame]) -> bool:
    """Whether the runs are small and hold one query between them (a served request)."""
    if sum(r.height for r in runs) > SMALL_RUN:
        return False
    ids = {q for r in runs for q in r[QUERY_ID].unique().to_list()}
    return len(ids) == 1 and None not in ids


def _fuse_one_query(
    runs: Sequence[pl.DataFrame], method: str, w: list[float], rrf_k: float, k: int | None
) -> pl.DataFrame:
    """`rrf` / minmax `weighted` of one query's runs in Python, with the same float operations
    in the same order as the polars expressions (the tests compare them bit for bit): a
    request's fusion took 8 ms as ~20 polars steps."""
    total: dict[str, float] = {}
    query = next(r[QUERY_ID][0] for r in runs if r.height)
    if method == "rrf":
        for run, wi in zip(runs, w, strict=True):
            run = _ranked(run)
            for item, rank in zip(run[ITEM_ID].to_list(), run[RANK].to_list(), strict=True):
                total[item] = total.get(item, 0.0) + wi / (rrf_k + rank)
    else:  # weighted, minmax: an item a run did not retrieve counts 0 there
        normed = []
        for run in runs:
            run = _ranked(run)
            s = run[SCORE].to_list()
            lo, hi = (min(s), max(s)) if s else (0.0, 0.0)
            x = [(v - lo) / (hi - lo) if hi > lo else 1.0 for v in s]
            normed.append(dict(zip(run[ITEM_ID].to_list(), x, strict=True)))
        for item in {i for n in normed for i in n}:
            score = 0.0
            for n, wi in zip(normed, w, strict=True):
                score = score + wi * n.get(item, 0.0)
            total[item] = score
    fused = pl.DataFrame(
        {
            QUERY_ID: pl.Series([query] * len(total), dtype=pl.String),
            ITEM_ID: pl.Series(list(total), dtype=pl.String),
            SCORE: pl.Series(list(total.values()), dtype=pl.Float64),
        }
    )
    return _finish(fused, k)


def fuse(
    runs: Sequence[pl.DataFrame],
    method: str = "rrf",
    *,
    k: int | None = None,
    rrf_k: float = 60,
    weights: Sequence[float] | None = None,
    norm: str = "minmax",
) -> pl.DataFrame:
    small = method in METHODS and (method == "rrf" or norm == "minmax") and _one_query(runs)
    if small:
        return _fuse_one_query(runs, method, _weights(weights, len(runs)), rrf_k, k)
    if method == "rrf":
        return rrf(runs, rrf_k=rrf_k, weights=weights, k=k)
    if method == "weighted":
        return weighted(runs, weights=weights, norm=norm, k=k)
    raise ConfigError(f"fusion: unknown method {method!r} (expected one of: {', '.join(METHODS)})")
