"""tune@<model>: Optuna study on the valid split -> tuned/<model>.json (a pass-through file for
models without a search space). Always resumes: a killed `dvc repro` continues the same study."""

import sys

from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.tuning.run import tune_from_params


def main(name: str) -> None:
    root = find_root()
    params = load_params()
    tune_from_params(root, params, name, resume=True)  # run_stage prints wall and CPU


if __name__ == "__main__":
    run_stage(f"tune@{sys.argv[1]}", main, sys.argv[1])
