"""Leaderboard: one row per model with mean and bootstrap CI per metric, and a paired test of
each model against a baseline on the sort metric. Rows sorted best first (every ShelfLab metric
is higher-is-better)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import polars as pl

from shelflab.contract import QUERY_ID
from shelflab.errors import ConfigError
from shelflab.evaluation.significance import bootstrap_ci, paired_test

__all__ = ["FORMATS", "build_leaderboard", "format_leaderboard"]

FORMATS = ("table", "markdown", "json")
MODEL, N, BASELINE, DELTA_ON = "model", "n", "baseline", "delta_on"
DELTA, DELTA_LOW, DELTA_HIGH, P_VALUE = "delta", "delta_ci_low", "delta_ci_high", "p_value"


def build_leaderboard(
    per_query: Mapping[str, pl.DataFrame],
    metrics: Sequence[str],
    baseline: str | None = None,
    sort_by: str | None = None,
    *,
    method: str = "randomization",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pl.DataFrame:
    """per_query: model name -> per-query table (query_id + metric columns, e.g.
    `EvalResult.per_query`), all on the same queries. sort_by defaults to the first metric.

    Columns: model, n, then `<metric>`, `<metric>_ci_low`, `<metric>_ci_high` per metric; with
    a baseline also baseline (its name), delta_on (= sort_by), delta, delta_ci_low,
    delta_ci_high and p_value (paired test of the model against the baseline on sort_by; null
    on the baseline's own row)."""
    if not per_query:
        raise ConfigError("no model to rank")
    metrics = list(metrics)
    if not metrics:
        raise ConfigError("no metric to rank on")
    sort_by = metrics[0] if sort_by is None else sort_by
    if sort_by not in metrics:
        raise ConfigError(f"sort_by {sort_by!r} is not one of the metrics ({', '.join(metrics)})")
    if baseline is not None and baseline not in per_query:
        raise ConfigError(
            f"unknown baseline {baseline!r} (expected one of: {', '.join(sorted(per_query))})"
        )
    for model, df in per_query.items():
        missing = [m for m in [QUERY_ID, *metrics] if m not in df.columns]
        if missing:
            raise ConfigError(
                f"model {model!r} has no column(s) {', '.join(missing)} "
                f"(columns: {', '.join(df.columns)})"
            )

    rows = []
    for model, df in per_query.items():
        row: dict[str, object] = {MODEL: model, N: df.height}
        for m in metrics:
            mean, low, high = bootstrap_ci(df[m], n_resamples, confidence, seed)
            row |= {m: mean, f"{m}_ci_low": low, f"{m}_ci_high": high}
        if baseline is not None:
            row |= {BASELINE: baseline, DELTA_ON: sort_by}
            if model == baseline:
                row |= {DELTA: 0.0, DELTA_LOW: 0.0, DELTA_HIGH: 0.0, P_VALUE: None}
            else:
                test = paired_test(
                    df.select(QUERY_ID, sort_by),
                    per_query[baseline].select(QUERY_ID, sort_by),
                    method=method,
                    n_resamples=n_resamples,
                    seed=seed,
                    confidence=confidence,
                )
                row |= {
                    DELTA: test.delta,
                    DELTA_LOW: test.ci_low,
                    DELTA_HIGH: test.ci_high,
                    P_VALUE: test.p_value,
                }
        rows.append(row)

    schema: dict[str, pl.DataType] = {MODEL: pl.String(), N: pl.Int64()}
    for m in metrics:
        schema |= {m: pl.Float64(), f"{m}_ci_low": pl.Float64(), f"{m}_ci_high": pl.Float64()}
    if baseline is not None:
        schema |= {BASELINE: pl.String(), DELTA_ON: pl.String()}
        schema |= {c: pl.Float64() for c in (DELTA, DELTA_LOW, DELTA_HIGH, P_VALUE)}
    board = pl.DataFrame(rows, schema=schema, orient="row")
    return board.sort([sort_by, MODEL], descending=[True, False])


# per-query latency (the evaluate stage's `_latency`) and the wall seconds of the model's
# train@ and index@ stages (its `_build`)
COST_COLUMNS = ("p50_ms", "p95_ms", "train_s", "index_s", "test_looks")
# what each model's means counted besides its n (JSON always; the table shows them when > 0)
COUNT_COLUMNS = ("queries_missing_from_run", "queries_without_relevant", "queries_run_ignored")


def with_costs(board: pl.DataFrame, costs: Mapping[str, Mapping[str, float]]) -> pl.DataFrame:
    """Add the cost columns (model -> {p50_ms, p95_ms, train_s, index_s, test_looks}) to a
    leaderboard; models without a figure get nulls. test_looks: how many evaluation runs of
    the model's family scored the test split."""
    cols = {
        c: [costs.get(m, {}).get(c) for m in board[MODEL].to_list()]
        for c in (*COST_COLUMNS, *COUNT_COLUMNS)
    }
    return board.with_columns(pl.Series(c, v, dtype=pl.Float64) for c, v in cols.items())


def format_leaderboard(df: pl.DataFrame, fmt: str = "table", digits: int = 4) -> str:
    """Render a `build_leaderboard` frame as an aligned text table, a Markdown table or JSON
    (a list of row objects with every column)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r} (expected one of: {', '.join(FORMATS)})")
    if fmt == "json":
        return json.dumps(df.to_dicts(), indent=2, allow_nan=False, default=str)

    metrics = [c for c in df.columns if f"{c}_ci_low" in df.columns and c not in (DELTA, MODEL)]
    has_baseline = DELTA in df.columns
    latency = [c for c in COST_COLUMNS if c in df.columns and df[c].is_not_null().any()]
    latency += [c for c in COUNT_COLUMNS if c in df.columns and (df[c].fill_null(0) > 0).any()]
    header = [MODEL, N, *metrics]
    if has_baseline and df.height:
        header += [f"delta {df[DELTA_ON][0]} vs {df[BASELINE][0]}", "p"]
    header += [c.replace("_", " ") for c in latency]
    body = []
    for row in df.iter_rows(named=True):
        cells = [str(row[MODEL]), str(row[N])]
        for m in metrics:
            cells.append(_with_ci(row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"], digits))
        if has_baseline:
            cells.append(_with_ci(row[DELTA], row[DELTA_LOW], row[DELTA_HIGH], digits, sign=True))
            cells.append("baseline" if row[P_VALUE] is None else _p(row[P_VALUE]))
        cells += [_cost(row[c], c) for c in latency]
        body.append(cells)
    if fmt == "markdown":
        align = ["---", "---:"] + ["---:"] * (len(header) - 2)
        lines = [header, align, *body]
        return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in lines)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    out = []
    for r in [header, *body]:
        left = r[0].ljust(widths[0])
        out.append("  ".join([left] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]))
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def _cost(value: float | None, column: str) -> str:
    if value is None:
        return ""
    whole = column == "test_looks" or column in COUNT_COLUMNS
    return f"{value:.0f}" if whole else f"{value:.1f}"


def _with_ci(mean: float, low: float, high: float, digits: int, sign: bool = False) -> str:
    spec = f"{'+' if sign else ''}.{digits}f"
    return f"{mean:{spec}} [{low:.{digits}f}, {high:.{digits}f}]"


def _p(p: float) -> str:
    if math.isnan(p):
        return "nan"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
