"""What a study produced: `TuneResult` (read back from the Optuna storage) and `TuningError`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from shelflab.config import redact
from shelflab.errors import ShelfLabError
from shelflab.tuning.spaces import apply_params
from shelflab.tuning.storage import finished_states


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


def study_result(
    name: str, spec: Mapping[str, Any], cfg: Mapping[str, Any], study, storage: str | None
) -> TuneResult:
    """The study's state now: counts, and the best trial merged into `spec`."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    finished = [t for t in trials if t.state in finished_states()]
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


def result_summary(result: TuneResult) -> dict[str, Any]:
    return asdict(result)
