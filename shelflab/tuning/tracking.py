"""MLflow logging of a finished study: one parent run (config, best params/value, plots) and one
nested child run per trial. Called from the parent process after the study finishes, so the
tracking store is never written concurrently."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shelflab.tuning.results import TuneResult

# Optuna state -> MLflow run status (RUNNING trials stay open)
RUN_STATUS = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}


def param_key(key: str) -> str:
    """MLflow param names allow [\\w./ -]: `weights[0]` -> `weights.0`."""
    return key.replace("[", ".").replace("]", "")


def log_study(
    study,
    result: TuneResult,
    cfg: Mapping[str, Any],
    *,
    tracking_uri: str,
    experiment: str,
    spec: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
) -> str:
    """One parent run (config, best params/value, plots) + one nested child run per trial."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from shelflab.registry.tracking import (
        KIND_TAG,
        MODEL_TAG,
        flatten,
        metric_key,
        start_experiment,
    )

    mlflow = start_experiment(tracking_uri, experiment)
    mkey = metric_key(cfg["split"], cfg["metric"])
    client = MlflowClient(tracking_uri)
    with mlflow.start_run(run_name=f"tune-{result.model}") as parent:
        mlflow.set_tags(
            {
                KIND_TAG: "tuning",
                MODEL_TAG: result.model,
                "optuna.study": result.study_name,
                "optuna.storage": result.storage,
                **(tags or {}),
            }
        )
        mlflow.log_params(
            {
                **flatten(dict(spec), "spec."),
                **flatten({k: v for k, v in cfg.items() if k != "space"}, "tune."),
                **{f"space.{param_key(k)}": json.dumps(v) for k, v in cfg["space"].items()},
            }
        )
        exp_id = parent.info.experiment_id
        for t in sorted(study.trials, key=lambda t: t.number):
            start_ms = int(t.datetime_start.timestamp() * 1000) if t.datetime_start else None
            end_ms = int(t.datetime_complete.timestamp() * 1000) if t.datetime_complete else None
            child_tags = {
                "mlflow.parentRunId": parent.info.run_id,
                "mlflow.runName": f"trial-{t.number:03d}",
                KIND_TAG: "tuning-trial",
                MODEL_TAG: result.model,
                "optuna.trial": str(t.number),
                "optuna.state": t.state.name,
                "optuna.worker": str(t.user_attrs.get("worker", "")),
            }
            if t.user_attrs.get("error"):
                child_tags["error"] = str(t.user_attrs["error"])[:5000]
            run = client.create_run(exp_id, start_time=start_ms, tags=child_tags)
            metrics = []
            if t.value is not None:
                metrics.append(Metric(mkey, float(t.value), end_ms or start_ms or 0, 0))
            client.log_batch(
                run.info.run_id,
                metrics=metrics,
                params=[Param(param_key(k), str(v)) for k, v in t.params.items()],
                tags=[RunTag("optuna.number", str(t.number))],
            )
            status = RUN_STATUS.get(t.state.name, "RUNNING")
            if status != "RUNNING":
                client.set_terminated(run.info.run_id, status=status, end_time=end_ms)
        mlflow.log_params({f"best.{param_key(k)}": str(v) for k, v in result.best_params.items()})
        mlflow.log_metrics(
            {
                "n_trials": result.n_trials,
                "n_complete": result.n_complete,
                "n_failed": result.n_failed,
                **({f"best_{mkey}": result.best_value} if result.n_complete else {}),
            }
        )
        log_plots(mlflow, study)
        return parent.info.run_id


def log_plots(mlflow, study) -> None:
    """Optimisation history always (given a completed trial); parameter importances when
    at least two completed trials and two varying params make them meaningful."""
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return
    varying = {k for k in complete[0].params if len({repr(t.params.get(k)) for t in complete}) > 1}
    plots = {"optimization_history.png": ovm.plot_optimization_history}
    if len(complete) >= 2 and len(varying) >= 2:
        plots["param_importances.png"] = ovm.plot_param_importances
    with tempfile.TemporaryDirectory() as tmp:
        for filename, plot in plots.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ax = plot(study)
                fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
                fig.set_size_inches(8, 5)
                fig.tight_layout()
                path = Path(tmp) / filename
                fig.savefig(path, dpi=100)
                plt.close(fig)
                mlflow.log_artifact(str(path), artifact_path="plots")
            except Exception as exc:  # a plot must never fail the tuning run
                print(f"tune: could not draw {filename}: {exc}", file=sys.stderr)
