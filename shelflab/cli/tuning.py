"""`shelflab tune`: run a model's Optuna study outside (or inside) DVC.

Wire into shelflab/cli.py with `add_tune_parser(sub)`; the handler is `cmd_tune`.
A model without a `tune.models.<name>` entry gets a pass-through tuned/<name>.json (the
params.yaml values), so a `tune@<model>` stage can exist for every model.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_tune_parser(subparsers) -> argparse.ArgumentParser:
    tp = subparsers.add_parser(
        "tune",
        help="tune a model's params on the valid split (Optuna), write tuned/<model>.json",
    )
    tp.add_argument("--model", required=True, help="model name from params.yaml")
    tp.add_argument("--trials", type=int, help="trial budget (default tune.models.<m>.trials)")
    tp.add_argument(
        "--storage",
        help="Optuna storage URL (default tune.storage, else sqlite:///optuna.db); "
        "postgresql://user@host/db for several workers",
    )
    tp.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    tp.add_argument(
        "--resume",
        action="store_true",
        help="continue an existing study: finished trials count toward the budget, trials "
        "left RUNNING by a killed process are marked failed",
    )
    tp.add_argument(
        "--overwrite", action="store_true", help="delete an existing study of the same name first"
    )
    tp.add_argument("--out", help="tuned JSON to write (default tuned/<model>.json)")
    tp.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    tp.set_defaults(handler=cmd_tune)
    return tp


def cmd_tune(args: argparse.Namespace) -> None:
    from pathlib import Path

    from shelflab.config import (
        experiment_name,
        find_root,
        load_params,
        model_spec,
        tracking_uri,
    )
    from shelflab.errors import ConfigError
    from shelflab.layout import Layout
    from shelflab.pipeline.built import model_context
    from shelflab.tuning import (
        DEFAULT_STORAGE,
        tune_model,
        tuned_path,
        write_tuned,
        write_untuned,
    )

    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    root = find_root()
    layout = Layout(root)
    params = load_params()
    spec = model_spec(params, args.model)
    tune_cfg = params.get("tune") or {}
    out = Path(args.out) if args.out else tuned_path(root, args.model)
    if args.model not in (tune_cfg.get("models") or {}):
        write_untuned(out, args.model, spec)
        print(f"tune@{args.model}: no tune.models.{args.model} entry; params.yaml values -> {out}")
        return
    result = tune_model(
        args.model,
        spec,
        tune_cfg,
        layout,
        storage=args.storage or tune_cfg.get("storage") or DEFAULT_STORAGE,
        workers=args.workers,
        resume=args.resume,
        overwrite=args.overwrite,
        trials=args.trials,
        tracking_uri=None if args.no_mlflow else tracking_uri(params, root),
        experiment=experiment_name(params),
        relevance_threshold=float(params["evaluate"].get("relevance_threshold", 1.0)),
        ctx=model_context(layout, show_progress=False),
        tags={"track": str(params["mlflow"]["track"]), "dataset": str(params["data"]["name"])},
    )
    write_tuned(out, result)
    print(
        f"tune@{args.model}: best {result.split} {result.metric} = {result.best_value:.4f} "
        f"({result.n_complete} complete, {result.n_failed} failed of {result.n_trials}; "
        f"study {result.study_name}) -> {out}"
    )
    print(json.dumps(result.best_params, sort_keys=True), file=sys.stderr)
