"""tuned/<model>.json: written by tune@<model> (best params + provenance, or a pass-through of
params.yaml for a model without a search space), read back by train@<model>."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shelflab.atomic import write_json
from shelflab.errors import ConfigError
from shelflab.tuning.results import TuneResult
from shelflab.tuning.spaces import apply_params

TUNED_DIR = "tuned"


def tuned_path(root: Path, name: str) -> Path:
    return Path(root) / TUNED_DIR / f"{name}.json"


def write_tuned(path: str | Path, result: TuneResult) -> None:
    """Atomic JSON: the best params (as space keys and merged into the spec) and provenance."""
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


class TunedFile(BaseModel):
    """What train@ reads from tuned/<model>.json (other provenance keys are kept as written)."""

    model_config = ConfigDict(extra="allow")
    model: str
    tuned: bool
    best_params: dict[str, Any]
    params: dict[str, Any]
    space: dict[str, Any] | None = None


def read_tuned(path: Path, name: str) -> dict[str, Any]:
    """The checked JSON of tuned/<name>.json: ConfigError naming the file otherwise."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable JSON file ({exc})") from None
    try:
        TunedFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {key}: {err['msg']} (rerun tune@{name})") from None
    if raw["model"] != name:
        raise ConfigError(f"{path}: written for model {raw['model']!r}, not {name!r}")
    return raw


def tuned_spec(root: str | Path, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """What train@<name> should build: `spec` with `tuned/<name>.json` applied when it
    exists, else `spec` unchanged (no tuning stage -> params.yaml values). Both the
    params.yaml entry and the result are validated: a bad value in params.yaml is an error
    even where the tuned file would override it, and so is a tuned value out of range."""
    from shelflab.models.registry import validate_spec

    validate_spec(name, spec)
    path = tuned_path(Path(root), name)
    if not path.is_file():
        return dict(spec)
    merged = apply_tuned(spec, read_tuned(path, name))
    try:
        validate_spec(name, merged)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return merged
