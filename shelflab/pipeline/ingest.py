"""The ingest stages' MLflow side: kept apart from `built` so an ingest stage depends on the
config and tracking code only, never on the model zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def log_ingest(
    root: Path, params: dict[str, Any], summary: dict[str, Any], quarantine_file: Path
) -> None:
    """An MLflow `ingest` run of the track's experiment: the summary's counts, one metric per
    quarantine reason, and the quarantine file itself."""
    from shelflab.config import experiment_name, tracking_uri
    from shelflab.registry.tracking import git_commit, log_data_run

    rejected = summary["quarantined_by_reason"]
    metrics = {k: float(v) for k, v in summary.items() if isinstance(v, int | float)}
    metrics |= {f"quarantined_{r.replace(' ', '_')}": float(n) for r, n in rejected.items()}
    log_data_run(
        tracking_uri=tracking_uri(params, root),
        experiment=experiment_name(params),
        stage="ingest",
        metrics=metrics,
        tags={
            "git_commit": git_commit(root),
            "track": params["mlflow"]["track"],
            "dataset": params["data"]["name"],
        },
        artifacts=[quarantine_file],
    )
