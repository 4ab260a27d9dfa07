"""leaderboard: every model of params.yaml on one split, with CIs and paired p vs the baseline."""

import json

import polars as pl

from shelflab.atomic import write_json, write_text
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.evaluation.leaderboard import build_leaderboard, format_leaderboard, with_costs
from shelflab.layout import Layout
from shelflab.pipeline.significance import leaderboard_stats
from shelflab.pipeline.skipped import is_skipped


def main() -> None:
    layout = Layout(find_root())
    params = load_params()
    cfg = params["leaderboard"]
    per_query = {
        name: pl.read_parquet(layout.per_query(name)).filter(pl.col("split") == cfg["split"])
        for name in params["models"]
        if layout.per_query(name).is_file() and not _skipped(layout, name)
    }
    board = build_leaderboard(
        per_query,
        metrics=cfg["metrics"],
        baseline=cfg["baseline"],
        sort_by=cfg["metric"],
        **leaderboard_stats(params),
    )
    board = with_costs(board, {name: _costs(layout, name) for name in per_query})
    header = (
        f"# Leaderboard — {params['mlflow']['track']}-{params['data']['name']}, "
        f"{cfg['split']} split\n\n"
    )
    write_text(
        header + format_leaderboard(board, "markdown") + "\n",
        layout.root / "reports" / "leaderboard.md",
    )
    write_json(
        {"split": cfg["split"], "rows": board.to_dicts()},
        layout.root / "metrics" / "leaderboard.json",
    )
    print(format_leaderboard(board, "table"))


def _skipped(layout: Layout, name: str) -> bool:
    path = layout.model_metrics(name)
    return path.is_file() and is_skipped(json.loads(path.read_text()))


def _costs(layout: Layout, name: str) -> dict:
    """The test split's per-query latency and the train@/index@ wall seconds the evaluate
    stage recorded (empty when absent)."""
    path = layout.model_metrics(name)
    if not path.is_file():
        return {}
    summary = json.loads(path.read_text())
    return {**summary.get("test", {}).get("_latency", {}), **summary.get("_build", {})}


if __name__ == "__main__":
    run_stage("leaderboard", main)
