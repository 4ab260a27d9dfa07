"""Hyper-parameter tuning with Optuna (`tune@<model>` stages, `shelflab tune`).

Public API: `tune_model` -> `TuneResult`, `write_tuned`, `apply_tuned`, `tuned_spec`
(what train@<model> builds), `model_config`. See `shelflab.tuning.study` for the policies
(budget, workers, resume, determinism) and `shelflab.tuning.spaces` for the space syntax.
"""

from shelflab.tuning.spaces import apply_params, check_space
from shelflab.tuning.study import (
    DEFAULT_STORAGE,
    TuneResult,
    TuningError,
    apply_tuned,
    model_config,
    tune_model,
    tuned_path,
    tuned_spec,
    write_tuned,
    write_untuned,
)

__all__ = [
    "DEFAULT_STORAGE",
    "TuneResult",
    "TuningError",
    "apply_params",
    "apply_tuned",
    "check_space",
    "model_config",
    "tune_model",
    "tuned_path",
    "tuned_spec",
    "write_tuned",
    "write_untuned",
]
