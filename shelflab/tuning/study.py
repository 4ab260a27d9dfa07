"""Optuna studies for one model: storage, workers, resume, MLflow logging, tuned/<model>.json.

- Sampler: TPE (or random) seeded with `tune.seed`; worker i uses seed + i. One worker gives
  the same trials, hence the same best params, on every rerun with the same seed, budget, data
  and space. Several workers are NOT order-deterministic (which worker asks first, and what it
  sees of the others' finished trials, depends on timing), so results may differ run to run.
- Budget: exactly `trials` finished trials (COMPLETE + FAIL + PRUNED) per study. Each worker
  runs a fixed share of what is left, so concurrent workers can never overshoot.
- Workers: `workers > 1` spawns that many OS processes on one shared storage (PostgreSQL is
  the real multi-process backend; SQLite works but warns: it serialises writers).
- Study name: `<model>-<hash>` of (model, spec, space, seed, sampler, metric, split, k,
  relevance threshold, data fingerprint): not of the budget, so `resume` may extend it.
  An existing study with trials is an error unless `resume` (continue it) or `overwrite`.
- Resume: trials left RUNNING by a killed process are marked FAIL first (resume assumes no
  other process is working on the study), then the remaining budget runs.
- `fixed` (per model, optional): params applied to every trial only (e.g. a cap on training
  pairs: low-fidelity trials of an expensive trainer); tuned/<model>.json keeps the model's own
  values for them.
- Pruning: iterative trainers report valid scores (`shelflab.models.training.report_valid`);
  `tune.pruner` median (default) or halving stops the lagging trials (PRUNED).
- A trial that raises is recorded as FAIL (its error in user attr `error`); the study goes on.
- MLflow: logged from the calling process after the study finishes (one parent run, one nested
  child run per trial of the study), so the tracking store is never written concurrently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.errors import ConfigError, ShelfLabError
from shelflab.layout import Layout
from shelflab.models.base import ModelContext, TrainData
from shelflab.tuning.objective import Evaluator
from shelflab.tuning.spaces import apply_params, check_space, suggest

DEFAULT_STORAGE = "sqlite:///optuna.db"
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "halving", "none")
TUNED_DIR = "tuned"

log = logging.getLogger(__name__)


class TuningError(ShelfLabError):
    """A study that cannot run or produced no completed trial."""


@dataclass
class TuneResult:
    model: str
    best_params: dict[str, Any]  # space key -> value (Optuna's best_params)
    best_value: float
    n_trials: int  # finished trials in the study (COMPLETE + FAIL + PRUNED)
    study_name: str
    best_spec: dict[str, Any] = field(default_factory=dict)
    metric: str = "ndcg@10"
    split: str = "valid"
    seed: int = 0
    n_complete: int = 0
    n_failed: int = 0
    storage: str = ""
    run_id: str | None = None
    space: dict[str, Any] = field(default_factory=dict)


# --- configuration -------------------------------------------------------------------------
def model_config(tune_cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The effective settings for `name`: section-wide keys, overridden per model."""
    models = tune_cfg.get("models") or {}
    if name not in models:
        raise ConfigError(
            f"tune.models has no entry {name!r} (tunable: {', '.join(sorted(models)) or 'none'})"
        )
    entry = dict(models[name] or {})
    cfg = {
        "metric": tune_cfg.get("metric", "ndcg@10"),
        "split": tune_cfg.get("split", "valid"),
        "seed": int(tune_cfg.get("seed", 0)),
        "sampler": tune_cfg.get("sampler", "tpe"),
        "pruner": tune_cfg.get("pruner", "median"),
        "k": int(tune_cfg.get("k", 100)),
        "trials": 20,
        "timeout": None,
        "fixed": {},
        **{k: v for k, v in entry.items() if k != "space"},
    }
    cfg["space"] = check_space(name, entry.get("space"))
    if not isinstance(cfg["fixed"], Mapping):
        raise ConfigError(f"tune.models.{name}.fixed: expected a mapping of param -> value")
    cfg["fixed"] = dict(cfg["fixed"])
    if not isinstance(cfg["trials"], int) or cfg["trials"] < 1:
        raise ConfigError(f"tune.models.{name}.trials: expected a positive integer")
    if cfg["sampler"] not in SAMPLERS:
        raise ConfigError(f"tune.sampler: {cfg['sampler']!r} (expected one of {SAMPLERS})")
    if cfg["pruner"] not in PRUNERS:
        raise ConfigError(f"tune.pruner: {cfg['pruner']!r} (expected one of {PRUNERS})")
    return cfg


def resolve_storage(url: str | None, root: Path | None = None) -> str | None:
    """None -> in-memory (one process only); a relative sqlite path is anchored at `root`."""
    if url in (None, "", "memory", ":memory:"):
        return None
    prefix = "sqlite:///"
    if root is not None and url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        url = prefix + str(Path(root) / url[len(prefix) :])
    if url.startswith(prefix) and url[len(prefix) :] not in ("", ":memory:"):
        Path(url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
    return url


def redact(url: str | None) -> str:
    """The storage URL without a password (for logs and MLflow tags)."""
    if not url:
        return "memory"
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
    return url


def data_fingerprint(data: TrainData) -> str:
    """A stable digest of the catalog and the train/valid queries + qrels."""
    digest = hashlib.sha1()
    for frame in (
        data.items,
        data.train_queries,
        data.train_qrels,
        data.valid_queries,
        data.valid_qrels,
    ):
        if frame is not None:
            # list columns (next-item histories) as space-joined ids: CSV holds no nested data
            flat = frame.with_columns(
                pl.col(c).list.join(" ") for c, t in frame.schema.items() if t == pl.List(pl.String)
            )
            digest.update(flat.sort(flat.columns[0]).write_csv().encode())
    return digest.hexdigest()[:16]


def study_name_for(
    name: str, spec: Mapping[str, Any], cfg: Mapping[str, Any], fingerprint: str, threshold: float
) -> str:
    key = {
        "model": name,
        "spec": spec,
        "space": cfg["space"],
        **({"fixed": cfg["fixed"]} if cfg["fixed"] else {}),
        **{k: cfg[k] for k in ("seed", "sampler", "metric", "split", "k")},
        "relevance_threshold": threshold,
        "data": fingerprint,
    }
    blob = json.dumps(key, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


# --- the study -----------------------------------------------------------------------------
def _finished_states():
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


def _sampler(cfg: Mapping[str, Any], worker: int):
    import optuna

    seed = cfg["seed"] + worker
    if cfg["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(cfg: Mapping[str, Any]):
    """Prunes iterative trainers (they report valid scores through `report_valid`): median
    pruning compares with the trials finished so far from the third trial on (small budgets
    of expensive trainers) and not at step 0 (biencoder_ft's untrained encoder); one-shot
    models never report."""
    import optuna

    if cfg["pruner"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if cfg["pruner"] == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _load_data(source: Layout | TrainData) -> TrainData:
    if isinstance(source, TrainData):
        return source
    from shelflab.pipeline.built import train_data

    return train_data(source)


@dataclass
class _Job:
    """Everything a worker process needs (picklable for spawn)."""

    name: str
    spec: dict[str, Any]
    cfg: dict[str, Any]
    source: Any  # Layout or TrainData
    storage: str | None
    study_name: str
    n_trials: int
    worker: int
    relevance_threshold: float
    ctx: ModelContext


def _optimize(job: _Job, study=None, data: TrainData | None = None) -> None:
    import optuna

    _quiet_optuna()
    if study is None:
        study = optuna.load_study(
            study_name=job.study_name,
            storage=job.storage,
            sampler=_sampler(job.cfg, job.worker),
            pruner=_pruner(job.cfg),
        )
    evaluator = Evaluator(
        data if data is not None else _load_data(job.source),
        metric=job.cfg["metric"],
        split=job.cfg["split"],
        k=job.cfg["k"],
        relevance_threshold=job.relevance_threshold,
        ctx=job.ctx,
    )
    space = job.cfg["space"]
    trial_spec = {**job.spec, **job.cfg["fixed"]}  # cheaper trial settings, never written out

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", job.worker)
        values = suggest(trial, space)

        def on_valid(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (valid {value:.4f})")

        try:
            return evaluator.score(job.name, apply_params(trial_spec, values, space), on_valid)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:1000])
            raise

    study.optimize(
        objective,
        n_trials=job.n_trials,
        timeout=job.cfg.get("timeout"),
        catch=(Exception,),
        gc_after_trial=False,
        show_progress_bar=False,
    )


def _worker_main(job: _Job) -> None:  # spawned process entry point
    from shelflab.config import quiet_environment

    quiet_environment()
    _optimize(job)


def _fail_stale(study) -> int:
    """Mark trials left RUNNING (a killed process) as FAIL; returns how many."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        study._storage.set_trial_user_attr(t._trial_id, "error", "stale: process was killed")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(stale)


def shares(total: int, workers: int) -> list[int]:
    """`total` trials split as evenly as possible over `workers` (no zero shares)."""
    workers = max(1, min(workers, total))
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def tune_model(
    name: str,
    spec: Mapping[str, Any],
    tune_cfg: Mapping[str, Any],
    layout_or_data: Layout | TrainData,
    *,
    storage: str | None = DEFAULT_STORAGE,
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    trials: int | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    relevance_threshold: float = 1.0,
    ctx: ModelContext | None = None,
    tags: Mapping[str, str] | None = None,
) -> TuneResult:
    """Run (or resume) the study of model `name`; log it to MLflow when `tracking_uri` is set.

    `tune_cfg` is the params.yaml `tune` section; `trials` overrides its budget. `storage`:
    an Optuna URL (relative sqlite paths are anchored at the layout root), None = in memory.
    """
    import optuna

    _quiet_optuna()
    spec = dict(spec)
    cfg = model_config(tune_cfg, name)
    if trials is not None:
        if trials < 1:
            raise ConfigError("--trials must be at least 1")
        cfg["trials"] = trials
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    root = layout_or_data.root if isinstance(layout_or_data, Layout) else None
    storage = resolve_storage(storage, root)
    if storage is None and workers > 1:
        raise ConfigError("several workers need a shared storage (sqlite:/// or postgresql://)")
    if storage and storage.startswith("sqlite") and workers > 1:
        warnings.warn(
            "SQLite with several workers: writers are serialised and may hit 'database is "
            "locked'; use --storage postgresql://... for parallel tuning",
            stacklevel=2,
        )
    if ctx is None:
        cache = root / ".cache" / "shelflab" if root else Path(".cache/shelflab")
        ctx = ModelContext(cache_dir=cache, show_progress=False)

    data = _load_data(layout_or_data)
    Evaluator(data, split=cfg["split"])  # fail early on a bad split / empty split
    study_name = study_name_for(name, spec, cfg, data_fingerprint(data), relevance_threshold)

    if overwrite and storage is not None:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=study_name, storage=storage)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="maximize",
        sampler=_sampler(cfg, 0),
        pruner=_pruner(cfg),
        load_if_exists=True,
    )
    existing = study.get_trials(deepcopy=False)
    if existing and not resume:
        raise TuningError(
            f"study {study_name!r} already has {len(existing)} trials in {redact(storage)}: "
            "pass --resume to continue it (finished trials count toward the budget), or "
            "--overwrite to start again"
        )
    stale = _fail_stale(study) if resume else 0
    finished = len(study.get_trials(deepcopy=False, states=_finished_states()))
    remaining = max(0, cfg["trials"] - finished)
    if stale:
        print(f"tune@{name}: marked {stale} stale RUNNING trial(s) FAIL", file=sys.stderr)

    start = time.perf_counter()
    if remaining:
        base = dict(
            name=name,
            spec=spec,
            cfg=cfg,
            storage=storage,
            study_name=study_name,
            relevance_threshold=relevance_threshold,
            ctx=ctx,
        )
        parts = shares(remaining, workers)
        if len(parts) == 1:
            _optimize(_Job(**base, source=data, n_trials=parts[0], worker=0), study, data)
        else:
            source = layout_or_data if isinstance(layout_or_data, Layout) else data
            mp = multiprocessing.get_context("spawn")
            procs = [
                mp.Process(
                    target=_worker_main,
                    args=(_Job(**base, source=source, n_trials=n, worker=i),),
                    name=f"tune-{name}-{i}",
                )
                for i, n in enumerate(parts)
            ]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            bad = [p.name for p in procs if p.exitcode != 0]
            if bad:
                print(f"tune@{name}: worker(s) {', '.join(bad)} exited abnormally", file=sys.stderr)
    elapsed = time.perf_counter() - start

    result = _result(name, spec, cfg, study, storage)
    if tracking_uri:
        result.run_id = log_study(
            study,
            result,
            cfg,
            tracking_uri=tracking_uri,
            experiment=experiment or "tuning",
            spec=spec,
            tags={**(tags or {}), "tune.elapsed_s": f"{elapsed:.1f}"},
        )
    if result.n_complete == 0:
        errors = {t.user_attrs.get("error") for t in study.trials if t.user_attrs.get("error")}
        raise TuningError(
            f"tune@{name}: no trial completed in study {study_name!r}"
            + (f"; errors: {'; '.join(sorted(errors))[:500]}" if errors else "")
        )
    return result


def _result(name, spec, cfg, study, storage) -> TuneResult:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    finished = [t for t in trials if t.state in _finished_states()]
    best_params: dict[str, Any] = {}
    best_value = float("nan")
    if complete:
        best = study.best_trial
        best_params, best_value = dict(best.params), float(best.value)
    return TuneResult(
        model=name,
        best_params=best_params,
        best_value=best_value,
        n_trials=len(finished),
        study_name=study.study_name,
        best_spec=apply_params(spec, best_params, cfg["space"]),
        metric=cfg["metric"],
        split=cfg["split"],
        seed=cfg["seed"],
        n_complete=len(complete),
        n_failed=sum(t.state == TrialState.FAIL for t in trials),
        storage=redact(storage),
        space=dict(cfg["space"]),
    )


# --- MLflow --------------------------------------------------------------------------------
def _param_key(key: str) -> str:
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
                **{f"space.{_param_key(k)}": json.dumps(v) for k, v in cfg["space"].items()},
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
                params=[Param(_param_key(k), str(v)) for k, v in t.params.items()],
                tags=[RunTag("optuna.number", str(t.number))],
            )
            status = {"COMPLETE": "FINISHED", "FAIL": "FAILED", "PRUNED": "KILLED"}.get(
                t.state.name, "RUNNING"
            )
            if status != "RUNNING":
                client.set_terminated(run.info.run_id, status=status, end_time=end_ms)
        mlflow.log_params({f"best.{_param_key(k)}": str(v) for k, v in result.best_params.items()})
        mlflow.log_metrics(
            {
                "n_trials": result.n_trials,
                "n_complete": result.n_complete,
                "n_failed": result.n_failed,
                **({f"best_{mkey}": result.best_value} if result.n_complete else {}),
            }
        )
        _log_plots(mlflow, study)
        return parent.info.run_id


def _log_plots(mlflow, study) -> None:
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


# --- tuned/<model>.json --------------------------------------------------------------------
def tuned_path(root: Path, name: str) -> Path:
    return Path(root) / TUNED_DIR / f"{name}.json"


def write_tuned(path: str | Path, result: TuneResult) -> None:
    """Atomic JSON: the best params (as space keys and merged into the spec) and provenance."""
    from shelflab.atomic import write_json

    write_json(
        {
            "model": result.model,
            "tuned": True,
            "best_params": result.best_params,
            "params": result.best_spec,
            "best_value": result.best_value,
            "metric": result.metric,
            "split": result.split,
            "n_trials": result.n_trials,
            "n_complete": result.n_complete,
            "n_failed": result.n_failed,
            "seed": result.seed,
            "study": result.study_name,
            "storage": result.storage,
            "mlflow_run_id": result.run_id,
            "space": result.space,
        },
        path,
    )


def write_untuned(path: str | Path, name: str, spec: Mapping[str, Any]) -> None:
    """The pass-through file for a model without a `tune.models` entry: params.yaml as is."""
    from shelflab.atomic import write_json

    write_json({"model": name, "tuned": False, "best_params": {}, "params": dict(spec)}, path)


def apply_tuned(spec: Mapping[str, Any], tuned: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """`spec` (params.yaml) with the tuned best params applied on top. Only the tuned keys
    change, so the other params always follow params.yaml. `tuned`: the JSON or its path."""
    if not isinstance(tuned, Mapping):
        tuned = json.loads(Path(tuned).read_text())
    best = tuned.get("best_params")
    if not isinstance(best, Mapping):
        raise ConfigError("tuned JSON: missing 'best_params' (not written by write_tuned?)")
    return apply_params(spec, best, tuned.get("space"))


def tuned_spec(root: str | Path, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """What train@<name> should build: `spec` with `tuned/<name>.json` applied when it
    exists, else `spec` unchanged (no tuning stage -> params.yaml values)."""
    path = tuned_path(Path(root), name)
    if not path.is_file():
        return dict(spec)
    tuned = json.loads(path.read_text())
    if tuned.get("model") not in (None, name):
        raise ConfigError(f"{path}: written for model {tuned.get('model')!r}, not {name!r}")
    return apply_tuned(spec, tuned)


def result_summary(result: TuneResult) -> dict[str, Any]:
    return asdict(result)
