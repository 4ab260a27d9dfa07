"""MLflow conventions: one experiment per (track, dataset), one run per evaluated model, tags
`git_commit`, `data_hash`, `track`, `model_family`, `shelflab.model`."""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from pathlib import Path
from typing import Any

MODEL_TAG = "shelflab.model"
KIND_TAG = "shelflab.kind"


def metric_key(split: str, metric: str, suffix: str = "") -> str:
    """MLflow metric names may not contain '@': `test` + `ndcg@10` -> `test_ndcg_at_10`."""
    key = f"{split}_{metric.replace('@', '_at_')}"
    return f"{key}_{suffix}" if suffix else key


def git_commit(root: Path) -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty.strip() else sha


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_hash(paths: list[Path]) -> str:
    """md5 over the md5s of the input files (DVC's per-file md5), order-independent."""
    lines = sorted(f"{p.name}:{file_md5(p)}" for p in paths)
    return hashlib.md5("\n".join(lines).encode()).hexdigest()


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


def start_experiment(tracking_uri: str, experiment: str):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    use_experiment(experiment)
    return mlflow


def use_experiment(name: str):
    """`mlflow.set_experiment`, except that a new experiment of a SQLite store keeps its
    artifacts beside the database (`<db folder>/mlruns`) rather than under the working
    directory: the tracks run from their own folders but share the repo's one store."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(name) is None:
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        with contextlib.suppress(MlflowException):  # created meanwhile by a parallel worker
            mlflow.create_experiment(name, artifact_location=(db.parent / "mlruns").as_uri())
    return mlflow.set_experiment(name)


def log_evaluation(
    *,
    tracking_uri: str,
    experiment: str,
    model_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: list[Path],
    curve_steps: dict[str, dict[int, float]] | None = None,
) -> str:
    """One MLflow run for one evaluated model; returns the run id."""
    mlflow = start_experiment(tracking_uri, experiment)
    with mlflow.start_run(run_name=model_name) as run:
        mlflow.set_tags({MODEL_TAG: model_name, KIND_TAG: "evaluation", **tags})
        mlflow.log_params(flatten(params))
        mlflow.log_metrics(metrics)
        # metric@K also as one series per metric (step = K): the MLflow UI draws the curve
        for name, values in (curve_steps or {}).items():
            for k, value in sorted(values.items()):
                mlflow.log_metric(name, value, step=k)
        for path in artifacts:
            mlflow.log_artifact(str(path))
        return run.info.run_id


def log_data_run(
    *,
    tracking_uri: str,
    experiment: str,
    stage: str,
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: list[Path],
) -> str:
    """One MLflow run for a data stage (e.g. ingest: counts, quarantine file); kind = stage."""
    mlflow = start_experiment(tracking_uri, experiment)
    with mlflow.start_run(run_name=stage) as run:
        mlflow.set_tags({KIND_TAG: stage, **tags})
        mlflow.log_metrics(metrics)
        for path in artifacts:
            mlflow.log_artifact(str(path))
        return run.info.run_id
