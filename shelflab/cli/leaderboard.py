"""`shelflab leaderboard`: the latest evaluation run of every model in an MLflow experiment,
ranked with bootstrap CIs and a paired test against the baseline, from the per-query
artifacts (so the CLI and the DVC leaderboard stage compute exactly the same table)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

from shelflab.errors import ConfigError


def show_leaderboard(args: argparse.Namespace) -> str:
    from shelflab.config import experiment_name, find_root, load_params, tracking_uri
    from shelflab.evaluation.leaderboard import (
        build_leaderboard,
        format_leaderboard,
        with_latency,
    )

    root = find_root()
    params = load_params() if (root / "params.yaml").is_file() else None
    board_cfg = (params or {}).get("leaderboard", {})
    experiment = args.experiment or (experiment_name(params) if params else None)
    if not experiment:
        raise ConfigError("no --experiment given and no params.yaml to take it from")
    split = args.split or board_cfg.get("split", "test")
    metric = args.metric or board_cfg.get("metric", "ndcg@10")
    metrics = args.metrics or board_cfg.get("metrics", [metric])
    if metric not in metrics:
        metrics = [metric, *metrics]
    baseline = args.baseline or board_cfg.get("baseline")
    uri = tracking_uri(params or {"mlflow": {}}, root)

    latency: dict[str, dict[str, float]] = {}
    per_query = latest_per_query(uri, experiment, split, latency)
    if baseline not in per_query:
        baseline = None
    board = build_leaderboard(per_query, metrics=metrics, baseline=baseline, sort_by=metric)
    board = with_latency(board, latency)
    if args.format == "table":
        return f"{experiment} — {split} split\n{format_leaderboard(board, 'table')}"
    return format_leaderboard(board, args.format)


def latest_per_query(
    uri: str, experiment: str, split: str, latency: dict[str, dict[str, float]] | None = None
) -> dict[str, pl.DataFrame]:
    """model name -> per-query metrics of its most recent evaluation run; `latency`, when
    given, is filled with the run's per-query latency figures (p50_ms, p95_ms) on `split`."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from shelflab.registry.tracking import KIND_TAG, MODEL_TAG

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        known = [e.name for e in client.search_experiments()]
        raise ConfigError(
            f"no MLflow experiment {experiment!r} at {uri} "
            f"(known: {', '.join(known) or 'none'}; run `dvc repro` first)"
        )
    runs = client.search_runs(
        [exp.experiment_id],
        f"tags.`{KIND_TAG}` = 'evaluation'",
        order_by=["attributes.start_time DESC"],
    )
    out: dict[str, pl.DataFrame] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            name = run.data.tags.get(MODEL_TAG)
            if not name or name in out:
                continue
            local = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path=f"{name}.parquet", dst_path=tmp
            )
            table = pl.read_parquet(Path(local))
            out[name] = table.filter(pl.col("split") == split)
            if latency is not None:
                m = run.data.metrics
                latency[name] = {
                    c: m[f"{split}_latency_{c}"]
                    for c in ("p50_ms", "p95_ms")
                    if f"{split}_latency_{c}" in m
                }
    if not out:
        raise ConfigError(f"experiment {experiment!r} has no evaluation runs")
    return out
