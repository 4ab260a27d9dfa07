"""Keep-best weights and patience: the one early-stopping rule of the iterative trainers
(sasrec and its subclasses, two_tower, biencoder_ft, cross_encoder), after RecBole's
`early_stopping` helper, as an object that also keeps the best weights.

Rule (param `patience` in every family that has one): after each validation the trainer calls
`update(step, score)`; a score strictly above the best so far is a gain (the weights are
snapshotted, the bad count reset), anything else (a tie, NaN) adds one bad evaluation.
`update` returns True once `patience` consecutive evaluations brought no gain; `patience: 0`
never stops (every epoch runs). At the end `restore()` puts the best snapshot back (nothing to
restore when no validation ran, or none gave a number: the last weights stay). Higher scores
are better.

Trainers report each valid score to the tuner (`training.report_valid`) before `update`, so a
pruned trial stops before any snapshot is taken.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Generic, TypeVar

S = TypeVar("S")


def state_copy(module: Any) -> dict[str, Any]:
    """A deep copy of a torch module's state_dict (on its device): later steps cannot alter it."""
    return copy.deepcopy(module.state_dict())


class EarlyStopping(Generic[S]):
    """Tracks the best score, its step and the bad-evaluation count; snapshots the state at
    each gain with `snapshot()` and loads it back with `load(state)` in `restore()`."""

    def __init__(self, patience: int, snapshot: Callable[[], S], load: Callable[[S], Any]) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        self.patience = patience
        self._snapshot = snapshot
        self._load = load
        self.best: float | None = None  # None until the first gain
        self.best_step: int | None = None
        self.bad = 0  # consecutive evaluations without a gain
        self.evaluations = 0
        self._state: S | None = None

    @classmethod
    def for_module(cls, module: Any, patience: int) -> EarlyStopping[dict[str, Any]]:
        """Keep-best over a torch module's weights (state_dict / load_state_dict)."""
        return cls(patience, lambda: state_copy(module), module.load_state_dict)

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad >= self.patience

    @property
    def improved(self) -> bool:
        """The last evaluation was a gain (its state is the kept one)."""
        return self.best is not None and self.bad == 0

    def update(self, step: int, score: float) -> bool:
        """Record the valid `score` after `step`; True when training should stop now."""
        self.evaluations += 1
        if score > (float("-inf") if self.best is None else self.best):  # NaN: never a gain
            self.best, self.best_step, self.bad = float(score), step, 0
            self._state = self._snapshot()
        else:
            self.bad += 1
        return self.should_stop

    def restore(self) -> bool:
        """Load the best snapshot back; False (nothing done) when no evaluation was a gain."""
        if self.best is None:
            return False
        self._load(self._state)  # type: ignore[arg-type]
        return True
