"""One model's tuning step from params.yaml to tuned/<model>.json: what the tune@<model> stage
and `shelflab tune` both run. A model without a `tune.models.<name>` entry gets a pass-through
file (its params.yaml values), so a tune@<model> stage can exist for every model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shelflab.config import experiment_name, model_spec, tracking_uri
from shelflab.errors import ConfigError
from shelflab.layout import Layout
from shelflab.pipeline.built import model_context
from shelflab.tuning.storage import DEFAULT_STORAGE
from shelflab.tuning.study import tune_model
from shelflab.tuning.tuned import tuned_path, write_tuned, write_untuned


def tune_from_params(
    root: Path,
    params: dict[str, Any],
    name: str,
    *,
    storage: str | None = None,
    workers: int = 1,
    resume: bool = False,
    overwrite: bool = False,
    trials: int | None = None,
    out: Path | None = None,
    log_mlflow: bool = True,
) -> Path:
    """Tune model `name` of the pipeline at `root` and write its tuned JSON; returns its path.

    `params`: the loaded params.yaml. `storage`: an Optuna URL (default `tune.storage`, else
    sqlite:///optuna.db under `root`). `out`: default tuned/<name>.json under `root`.
    Prints a one-line summary (stdout) and the best params (stderr).
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    root = Path(root)
    layout = Layout(root)
    spec = model_spec(params, name)
    tune_cfg = params.get("tune") or {}
    out = Path(out) if out else tuned_path(root, name)
    if name not in (tune_cfg.get("models") or {}):
        write_untuned(out, name, spec)
        print(f"tune@{name}: no tune.models.{name} entry; params.yaml values -> {out}")
        return out
    result = tune_model(
        name,
        spec,
        tune_cfg,
        layout,
        storage=storage or tune_cfg.get("storage") or DEFAULT_STORAGE,
        workers=workers,
        resume=resume,
        overwrite=overwrite,
        trials=trials,
        tracking_uri=tracking_uri(params, root) if log_mlflow else None,
        experiment=experiment_name(params),
        relevance_threshold=float(params["evaluate"].get("relevance_threshold", 1.0)),
        ctx=model_context(layout),  # long loops (a cold catalog embedding) still speak
        tags={"track": str(params["mlflow"]["track"]), "dataset": str(params["data"]["name"])},
    )
    write_tuned(out, result)
    print(
        f"tune@{name}: best {result.split} {result.metric} = {result.best_value:.4f} "
        f"({result.n_complete} complete, {result.n_failed} failed of {result.n_trials}; "
        f"study {result.study_name}) -> {out}"
    )
    print(json.dumps(result.best_params, sort_keys=True), file=sys.stderr)
    return out
