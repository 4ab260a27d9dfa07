"""MLflow conventions: one experiment per (track, dataset), one run per evaluated model, tags
`git_commit`, `data_hash`, `track`, `model_family`, `shelflab.model`; every experiment is tagged
a model-training one, an evaluation run records the tables it read as MLflow datasets (the runs
table's Dataset column), and an evaluation experiment has a primary metric and a saved view of
its runs with the leaderboard metrics as columns."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.config import redact
from shelflab.errors import ConfigError

MODEL_TAG = "shelflab.model"
KIND_TAG = "shelflab.kind"
# The experiment kind (MLflow 3.x; MLflow ships no Python constant for it, only the UI's
# ExperimentKind enum): "custom_model_development" is model training. MLflow 3.17's UI lays out
# an experiment by its sidebar switch GenAI / Model training instead (kept in the browser, or the
# URL parameter `workflowType=machine_learning`): the tag is what the experiment is, for the
# other readers of it and for UIs that lay out by it.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
# A saved view of the runs table (the "Views" menu of the UI's Runs tab, MLflow 3.17): the UI keeps
# each as the experiment tag `mlflow.sharedViewState.<id>`; a view it cannot read it leaves out.
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
LEADERBOARD_VIEW = "shelflab-leaderboard"
DEFAULT_COLUMNS = ("attributes.`Source`", "attributes.`Models`", "attributes.`Dataset`")


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


TRACKING_SCHEMES = frozenset(
    {"", "file", "sqlite", "postgresql", "postgres", "mysql", "mssql", "http", "https",
     "databricks", "databricks-uc", "uc"}
)  # fmt: skip


def use_tracking_uri(uri: str) -> None:
    """Point MLflow at `uri` after checking, once per process and within
    SHELFLAB_CONNECT_TIMEOUT seconds, that a PostgreSQL or HTTP store answers: a store that is
    down is one line naming it, not minutes of retries and a traceback."""
    import mlflow

    from shelflab.servers import check_reachable

    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme.split("+", 1)[0] not in TRACKING_SCHEMES:
        raise ConfigError(
            f"MLflow tracking URI {redact(uri)}: unknown scheme {scheme!r} (expected a path, "
            "file:, sqlite:, postgresql:, mysql:, http: or https:)"
        )
    check_reachable(uri, "MLflow tracking store")
    mlflow.set_tracking_uri(uri)


def start_experiment(tracking_uri: str, experiment: str):
    import mlflow

    use_tracking_uri(tracking_uri)
    use_experiment(experiment)
    return mlflow


def use_experiment(name: str):
    """`mlflow.set_experiment`, except that a new experiment of a SQLite store keeps its
    artifacts beside the database (`<db folder>/mlruns`) rather than under the working
    directory: the tracks run from their own folders but share the repo's one store. New or
    old, the experiment is tagged a model-training one (EXPERIMENT_KIND_TAG)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(name) is None:
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        with contextlib.suppress(MlflowException):  # created meanwhile by a parallel worker
            mlflow.create_experiment(
                name,
                artifact_location=(db.parent / "mlruns").as_uri(),
                tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND},
            )
    experiment = mlflow.set_experiment(name)
    return set_experiment_tags(experiment, {EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})


def set_experiment_tags(experiment, tags: dict[str, str]):
    """Write the tags of `experiment` that differ (none on a later run, so parallel workers do
    not queue on the store); returns the experiment as stored."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    changed = {k: v for k, v in tags.items() if experiment.tags.get(k) != v}
    if not changed:
        return experiment
    client = MlflowClient()
    for key, value in changed.items():
        try:
            client.set_experiment_tag(experiment.experiment_id, key, value)
        except MlflowException:
            # a parallel worker wrote the same tag at the same time: fine if it is there now
            if mlflow.get_experiment(experiment.experiment_id).tags.get(key) != value:
                raise
    return mlflow.get_experiment(experiment.experiment_id)


def leaderboard_view(metrics: list[str], name: str = "ShelfLab leaderboard") -> dict[str, Any]:
    """The saved-view tag value of the UI's runs table: its default columns plus `metrics`
    (MLflow metric keys, the first one sorts, best first). The UI's own format: an envelope
    with name, createdAt, updatedAt and the view state as a JSON string."""
    state = {
        "selectedColumns": [*DEFAULT_COLUMNS, *(f"metrics.`{m}`" for m in metrics)],
        "orderByKey": f"metrics.`{metrics[0]}`",
        "orderByAsc": False,
    }
    return {"name": name, "state": json.dumps(state)}


def show_metrics(experiment, metrics: list[str]) -> None:
    """Make `metrics` (MLflow metric keys, the primary one first) what the UI shows first: the
    experiment's primary metric (the charts put it first) and a saved view of the runs table
    with one column per metric, sorted by the first (the UI's "Views" menu, or the link
    `#/experiments/<id>/runs?workflowType=machine_learning&viewStateShareKey=shelflab-leaderboard`).
    The runs table opened without a view keeps MLflow's default columns (no metric): the UI
    keeps that choice in the browser, and no server-side setting changes it."""
    from mlflow.utils.mlflow_tags import (
        MLFLOW_EXPERIMENT_PRIMARY_METRIC_GREATER_IS_BETTER,
        MLFLOW_EXPERIMENT_PRIMARY_METRIC_NAME,
    )

    if not metrics:
        return
    key = f"{VIEW_TAG_PREFIX}{LEADERBOARD_VIEW}"
    view = leaderboard_view(metrics)
    try:
        old = json.loads(experiment.tags.get(key, ""))
    except ValueError:
        old = {}
    if all(old.get(k) == v for k, v in view.items()):
        view = old  # unchanged: keep its timestamps (and skip the write)
    else:
        now = int(time.time() * 1000)
        view = {**view, "createdAt": old.get("createdAt", now), "updatedAt": now}
    set_experiment_tags(
        experiment,
        {
            MLFLOW_EXPERIMENT_PRIMARY_METRIC_NAME: metrics[0],
            MLFLOW_EXPERIMENT_PRIMARY_METRIC_GREATER_IS_BETTER: "True",
            key: json.dumps(view),
        },
    )


@dataclass(frozen=True)
class RunInput:
    """One table an evaluation read, logged as an MLflow dataset: its schema, profile (rows) and
    digest (a hash of its rows), not its data. `source`: the file it came from; `context`: the
    split it was read for, or "catalog"."""

    name: str
    source: Path
    context: str
    frame: pl.DataFrame


def evaluation_inputs(
    dataset: str,
    *,
    queries: Path,
    qrels: Path,
    splits: Path,
    items: Path,
    split_names: Iterable[str],
) -> list[RunInput]:
    """Per evaluated split its queries and qrels (`<dataset>-queries-<split>`, context the
    split), and the item catalog (`<dataset>-items`, context "catalog"). A file that is not
    there is left out (and so are the per-split tables without the splits file)."""
    out: list[RunInput] = []
    per_split = [("queries", queries), ("qrels", qrels)]
    if splits.is_file():
        assignment = pl.read_parquet(splits, columns=["query_id", "split"])
        frames = [(kind, path, pl.read_parquet(path)) for kind, path in per_split if path.is_file()]
        for split in split_names:
            ids = assignment.filter(pl.col("split") == split).select("query_id")
            for kind, path, frame in frames:
                part = frame.join(ids, on="query_id", how="semi")
                out.append(RunInput(f"{dataset}-{kind}-{split}", path.resolve(), split, part))
    if items.is_file():
        out.append(RunInput(f"{dataset}-items", items.resolve(), "catalog", pl.read_parquet(items)))
    return out


def log_inputs(inputs: Iterable[RunInput]) -> None:
    """Log `inputs` to the active run (mlflow.data.from_polars, a local file source)."""
    import mlflow
    from mlflow.data.sources import LocalArtifactDatasetSource

    inputs = list(inputs)
    if not inputs:
        return
    datasets = [
        mlflow.data.from_polars(
            t.frame, source=LocalArtifactDatasetSource(str(t.source)), name=t.name
        )
        for t in inputs
    ]
    contexts = [t.context for t in inputs]
    mlflow.log_inputs(datasets=datasets, contexts=contexts, tags_list=[None] * len(inputs))


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
    inputs: Iterable[RunInput] = (),
    shown_metrics: list[str] | None = None,
) -> str:
    """One MLflow run for one evaluated model; returns the run id. `inputs`: the tables the
    evaluation read (evaluation_inputs); `shown_metrics`: the metric keys the UI shows first
    (show_metrics), the primary one first."""
    import mlflow

    use_tracking_uri(tracking_uri)
    exp = use_experiment(experiment)
    show_metrics(exp, shown_metrics or [])
    looks = {}
    if looks_at_test(metrics):
        family = tags.get("model_family", model_name)
        looks = {TEST_LOOKS_TAG: str(test_looks(exp.experiment_id, family) + 1)}
    with mlflow.start_run(run_name=model_name) as run:
        mlflow.set_tags({MODEL_TAG: model_name, KIND_TAG: "evaluation", **tags, **looks})
        log_inputs(inputs)
        mlflow.log_params(flatten(params))
        mlflow.log_metrics(metrics)
        # metric@K also as one series per metric (step = K): the MLflow UI draws the curve
        for name, values in (curve_steps or {}).items():
            for k, value in sorted(values.items()):
                mlflow.log_metric(name, value, step=k)
        for path in artifacts:
            mlflow.log_artifact(str(path))
        return run.info.run_id


TEST_LOOKS_TAG = "shelflab.test_looks"


def test_looks(experiment_id: str, family: str) -> int:
    """How many evaluation runs of model family `family` in the experiment scored the test
    split (every one spends some of its honesty: a choice made after looking is tuned on it)."""
    from mlflow.tracking import MlflowClient

    runs = MlflowClient().search_runs(
        [experiment_id],
        f"tags.`{KIND_TAG}` = 'evaluation' and tags.model_family = '{family}'",
        max_results=50000,
    )
    return sum(looks_at_test(r.data.metrics) for r in runs)


def looks_at_test(metrics: Iterable[str]) -> bool:
    """Whether an evaluation run with these metric keys scored the test split."""
    return any(k.startswith("test_") for k in metrics)


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
