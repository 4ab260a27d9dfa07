"""`shelflab tune`: run a model's Optuna study outside (or inside) DVC.

Wired into the CLI with `add_tune_parser(sub)`; the handler `cmd_tune` only parses arguments:
the work is `shelflab.tuning.run.tune_from_params`, which the tune@<model> stage calls too.
A model without a `tune.models.<name>` entry gets a pass-through tuned/<name>.json (the
params.yaml values), so a `tune@<model>` stage can exist for every model.
"""

from __future__ import annotations

import argparse


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

    from shelflab.config import find_root, load_params
    from shelflab.tuning.run import tune_from_params

    tune_from_params(
        find_root(),
        load_params(),
        args.model,
        storage=args.storage,
        workers=args.workers,
        resume=args.resume,
        overwrite=args.overwrite,
        trials=args.trials,
        out=Path(args.out) if args.out else None,
        log_mlflow=not args.no_mlflow,
    )
