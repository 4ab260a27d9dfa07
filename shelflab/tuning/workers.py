"""Running trials: the objective loop one worker runs, and spawned worker processes sharing one
study storage (each runs a fixed share of the budget, so together they never overshoot)."""

from __future__ import annotations

import multiprocessing
import sys
from dataclasses import dataclass
from typing import Any

from shelflab.layout import Layout
from shelflab.models.base import ModelContext, TrainData
from shelflab.timing import Progress
from shelflab.tuning.objective import Evaluator
from shelflab.tuning.settings import make_pruner, make_sampler, quiet_optuna
from shelflab.tuning.spaces import apply_params, suggest


@dataclass
class Job:
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


def load_data(source: Layout | TrainData) -> TrainData:
    if isinstance(source, TrainData):
        return source
    from shelflab.pipeline.built import train_data

    return train_data(source)


def shares(total: int, workers: int) -> list[int]:
    """`total` trials split as evenly as possible over `workers` (no zero shares)."""
    workers = max(1, min(workers, total))
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def optimize(job: Job, study=None, data: TrainData | None = None) -> None:
    """Run `job.n_trials` trials; a trial that raises is recorded FAIL (error in user attrs)."""
    import optuna

    quiet_optuna()
    if study is None:
        study = optuna.load_study(
            study_name=job.study_name,
            storage=job.storage,
            sampler=make_sampler(job.cfg, job.worker),
            pruner=make_pruner(job.cfg),
        )
    evaluator = Evaluator(
        data if data is not None else load_data(job.source),
        metric=job.cfg["metric"],
        split=job.cfg["split"],
        k=job.cfg["k"],
        relevance_threshold=job.relevance_threshold,
        ctx=job.ctx,
        catalog=job.cfg.get("catalog"),
        n_queries=job.cfg.get("queries"),
        seed=job.cfg["seed"],
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

    label = f"tune@{job.name}" + (f" worker {job.worker}" if job.worker else "")
    progress = Progress(label, job.n_trials, "trials", every=0)  # one line per trial

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        complete = trial.state == optuna.trial.TrialState.COMPLETE
        shown = f"{trial.value:.4f}" if complete else trial.state.name.lower()  # pruned, fail
        try:
            best = f"{study.best_value:.4f}"
        except ValueError:  # no completed trial yet
            best = "-"
        progress.update(1, trial=f"#{trial.number} {shown}", best=best)

    study.optimize(
        objective,
        n_trials=job.n_trials,
        timeout=job.cfg.get("timeout"),
        catch=(Exception,),
        callbacks=[report],
        gc_after_trial=False,
        show_progress_bar=False,
    )
    progress.close()


def worker_main(job: Job) -> None:  # spawned process entry point
    from shelflab.config import quiet_environment

    quiet_environment()
    optimize(job)


def run_processes(jobs: list[Job]) -> None:
    """One spawned process per job, all joined; abnormal exits are reported, not raised (the
    study's trials say what got done)."""
    mp = multiprocessing.get_context("spawn")
    procs = [
        mp.Process(target=worker_main, args=(job,), name=f"tune-{job.name}-{job.worker}")
        for job in jobs
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    bad = [p.name for p in procs if p.exitcode != 0]
    if bad:
        name = jobs[0].name
        print(f"tune@{name}: worker(s) {', '.join(bad)} exited abnormally", file=sys.stderr)
