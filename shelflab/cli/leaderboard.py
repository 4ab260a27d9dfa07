"""`shelflab leaderboard`: the latest evaluation run of every model in an MLflow experiment,
ranked with bootstrap CIs and a paired test against the baseline, from the per-query
artifacts (so the CLI and the DVC leaderboard stage compute exactly the same table)."""

from __future__ import annotations

import argparse

from shelflab.errors import ConfigError
from shelflab.registry.runs import latest_per_query


def show_leaderboard(args: argparse.Namespace) -> str:
    from shelflab.config import experiment_name, find_root, load_params, tracking_uri
    from shelflab.evaluation.leaderboard import (
        build_leaderboard,
        format_leaderboard,
        with_costs,
    )
    from shelflab.pipeline.significance import leaderboard_stats

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
    if args.baseline and args.baseline not in per_query:  # asked for by name: a typo
        raise ConfigError(
            f"--baseline {args.baseline!r}: no such model in experiment {experiment!r} on the "
            f"{split} split (models: {', '.join(sorted(per_query)) or 'none'})"
        )
    if baseline not in per_query:  # params.yaml's baseline not evaluated yet: no p column
        baseline = None
    stats = leaderboard_stats(params) if params else {}  # the leaderboard stage's settings
    board = build_leaderboard(
        per_query, metrics=metrics, baseline=baseline, sort_by=metric, **stats
    )
    board = with_costs(board, latency)
    if args.format == "table":
        return f"{experiment} — {split} split\n{format_leaderboard(board, 'table')}"
    return format_leaderboard(board, args.format)
