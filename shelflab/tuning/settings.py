"""The params.yaml `tune` section: one model's effective settings, and the Optuna sampler and
pruner they name."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from shelflab.errors import ConfigError
from shelflab.tuning.spaces import check_space

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "halving", "none")


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
        "catalog": None,
        "queries": None,
        **{k: v for k, v in entry.items() if k != "space"},
    }
    cfg["space"] = check_space(name, entry.get("space"))
    if not isinstance(cfg["fixed"], Mapping):
        raise ConfigError(f"tune.models.{name}.fixed: expected a mapping of param -> value")
    cfg["fixed"] = dict(cfg["fixed"])
    for key, unit in (("catalog", "items"), ("queries", "queries")):
        size = cfg[key]
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise ConfigError(
                f"tune.models.{name}.{key}: expected a positive number of {unit} or null, "
                f"got {size!r}"
            )
    if not isinstance(cfg["trials"], int) or cfg["trials"] < 1:
        raise ConfigError(f"tune.models.{name}.trials: expected a positive integer")
    if cfg["sampler"] not in SAMPLERS:
        raise ConfigError(f"tune.sampler: {cfg['sampler']!r} (expected one of {SAMPLERS})")
    if cfg["pruner"] not in PRUNERS:
        raise ConfigError(f"tune.pruner: {cfg['pruner']!r} (expected one of {PRUNERS})")
    return cfg


def make_sampler(cfg: Mapping[str, Any], worker: int):
    """TPE or random, seeded `tune.seed + worker` (one worker: the same trials every rerun)."""
    import optuna

    seed = cfg["seed"] + worker
    if cfg["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(cfg: Mapping[str, Any]):
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


def quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
