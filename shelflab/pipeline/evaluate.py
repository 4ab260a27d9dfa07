"""Evaluate one opened model on the pipeline's splits: runs, per-query metrics with bootstrap
CIs, metric@K curve, model diagnostics and the flat metric dict MLflow gets. No file I/O here:
the evaluate stage decides where things go."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from shelflab.evaluation.harness import evaluate
from shelflab.evaluation.significance import summarize
from shelflab.models.base import by_query_blocks
from shelflab.pipeline.built import split_frame
from shelflab.registry.tracking import metric_key

CURVE_METRICS = ("ndcg", "recall", "precision", "hit", "map")
CURVE_SPLIT = "test"


@dataclass
class ModelReport:
    runs: dict[str, pl.DataFrame] = field(default_factory=dict)  # split -> run
    per_query: list[pl.DataFrame] = field(default_factory=list)  # with a `split` column
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)  # metrics JSON
    mlflow_metrics: dict[str, float] = field(default_factory=dict)
    curve: pl.DataFrame | None = None  # k + one column per CURVE_METRICS (test split)
    training_curve: dict[str, dict[int, float]] = field(default_factory=dict)  # step = epoch

    def per_query_table(self) -> pl.DataFrame:
        return pl.concat(self.per_query)

    def curve_steps(self) -> dict[str, dict[int, float]]:
        """MLflow step series: metric@K of the test split (step = K) and the model's training
        curve (step = epoch)."""
        if self.curve is None:
            return dict(self.training_curve)
        ks = self.curve["k"].to_list()
        return {
            f"{CURVE_SPLIT}_{m}_at_k": dict(zip(ks, self.curve[m].to_list(), strict=True))
            for m in CURVE_METRICS
        } | self.training_curve


def evaluate_model(
    model: Any,
    queries: pl.DataFrame,
    qrels: pl.DataFrame,
    splits: pl.DataFrame,
    cfg: dict[str, Any],
) -> ModelReport:
    """`cfg` is params.yaml `evaluate`: splits, k, metrics, curve_ks, relevance_threshold,
    bootstrap."""
    report = ModelReport(training_curve=model.training_curve())
    boot = cfg["bootstrap"]
    curve_metrics = [f"{m}@{k}" for m in CURVE_METRICS for k in cfg["curve_ks"]]
    for split in cfg["splits"]:
        split_queries = split_frame(queries, splits, split)
        start = time.perf_counter()
        run = by_query_blocks(
            split_queries,
            lambda block: model.retrieve(block, cfg["k"]),
            f"{model.name}: retrieve {split}",
        )
        ms_per_query = 1000 * (time.perf_counter() - start) / max(1, split_queries.height)
        report.runs[split] = run
        wanted = cfg["metrics"] + (curve_metrics if split == CURVE_SPLIT else [])
        result = evaluate(
            split_frame(qrels, splits, split),
            run,
            list(dict.fromkeys(wanted)),
            relevance_threshold=cfg["relevance_threshold"],
        )
        report.per_query.append(
            result.per_query.select(["query_id", *cfg["metrics"]]).with_columns(
                pl.lit(split).alias("split")
            )
        )
        table = summarize(
            result.per_query,
            cfg["metrics"],
            n_resamples=boot["n_resamples"],
            confidence=boot["confidence"],
            seed=boot["seed"],
        )
        summary: dict[str, Any] = {}
        for row in table.iter_rows(named=True):
            summary[row["metric"]] = {k: row[k] for k in ("mean", "ci_low", "ci_high")}
            for suffix, key in (("", "mean"), ("ci_low", "ci_low"), ("ci_high", "ci_high")):
                report.mlflow_metrics[metric_key(split, row["metric"], suffix)] = row[key]
        # what the means count: evaluated, missing from the run (scored 0), without a
        # relevant item (excluded), run queries not in the qrels (ignored)
        summary["_queries"] = {**result.counts(), "ms_per_query": ms_per_query}
        report.mlflow_metrics[f"{split}_ms_per_query"] = ms_per_query
        report.mlflow_metrics.update(
            {f"{split}_queries_{k}": float(v) for k, v in result.counts().items()}
        )
        if result.mismatch():
            print(f"{model.name}: {split}: {result.mismatch()}", flush=True)
        if split == CURVE_SPLIT:
            ks = cfg["curve_ks"]
            report.curve = pl.DataFrame(
                {"k": ks, **{m: [result.means[f"{m}@{k}"] for k in ks] for m in CURVE_METRICS}}
            )
            latency = query_latency(model, split_queries, cfg["k"], cfg.get("latency_queries", 100))
            summary["_latency"] = latency
            report.mlflow_metrics.update(
                {f"{split}_latency_{key}": v for key, v in latency.items() if key != "queries"}
            )
            diagnostics = model.diagnostics(split_queries, cfg["k"])
            summary["_diagnostics"] = diagnostics
            report.mlflow_metrics.update({f"{split}_{k}": v for k, v in diagnostics.items()})
        report.summary[split] = summary
    return report


def query_latency(model: Any, queries: pl.DataFrame, k: int, n: int) -> dict[str, float]:
    """Per-query latency of the whole pipeline (query encoding, first stage, reranking): the
    first `n` queries retrieved one at a time after one warm-up call; p50/p95/mean in ms."""
    import numpy as np

    sample = queries.head(n)
    if sample.height == 0:
        return {}
    model.retrieve(sample.head(1), k)  # warm-up: lazy loads, device copies, clients
    times = []
    for i in range(sample.height):
        start = time.perf_counter()
        model.retrieve(sample.slice(i, 1), k)
        times.append(1000 * (time.perf_counter() - start))
    t = np.asarray(times)
    return {
        "queries": float(t.size),
        "p50_ms": float(np.percentile(t, 50)),
        "p95_ms": float(np.percentile(t, 95)),
        "mean_ms": float(t.mean()),
    }
