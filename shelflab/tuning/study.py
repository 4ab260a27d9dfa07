"""Create or resume the Optuna study of one model and run its trials.

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
  child run per trial of the study; `shelflab.tuning.tracking`).
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shelflab.config import redact
from shelflab.errors import ConfigError
from shelflab.layout import Layout
from shelflab.models.base import ModelContext, TrainData
from shelflab.tuning.objective import Evaluator
from shelflab.tuning.results import TuneResult, TuningError, study_result
from shelflab.tuning.settings import make_pruner, make_sampler, model_config, quiet_optuna
from shelflab.tuning.storage import (
    DEFAULT_STORAGE,
    data_fingerprint,
    fail_stale,
    finished_states,
    resolve_storage,
    study_name_for,
)
from shelflab.tuning.tracking import log_study
from shelflab.tuning.workers import Job, load_data, optimize, run_processes, shares


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

    quiet_optuna()
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

    data = load_data(layout_or_data)
    Evaluator(data, split=cfg["split"])  # fail early on a bad split / empty split
    study_name = study_name_for(name, spec, cfg, data_fingerprint(data), relevance_threshold)

    if overwrite and storage is not None:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=study_name, storage=storage)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="maximize",
        sampler=make_sampler(cfg, 0),
        pruner=make_pruner(cfg),
        load_if_exists=True,
    )
    existing = study.get_trials(deepcopy=False)
    if existing and not resume:
        raise TuningError(
            f"study {study_name!r} already has {len(existing)} trials in {redact(storage)}: "
            "pass --resume to continue it (finished trials count toward the budget), or "
            "--overwrite to start again"
        )
    stale = fail_stale(study) if resume else 0
    finished = len(study.get_trials(deepcopy=False, states=finished_states()))
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
        if len(parts) == 1:  # in this process, on the study and data already loaded
            optimize(Job(**base, source=data, n_trials=parts[0], worker=0), study, data)
        else:  # workers reload the data from the layout when there is one (smaller pickles)
            source = layout_or_data if isinstance(layout_or_data, Layout) else data
            run_processes(
                [Job(**base, source=source, n_trials=n, worker=i) for i, n in enumerate(parts)]
            )
    elapsed = time.perf_counter() - start

    result = study_result(name, spec, cfg, study, storage)
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
