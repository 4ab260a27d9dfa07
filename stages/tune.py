"""tune@<model>: Optuna study on the valid split -> tuned/<model>.json (a pass-through file for
models without a search space). `--resume`: a killed `dvc repro` continues the same study."""

import sys

from shelflab.cli.main import main as shelflab

if __name__ == "__main__":
    sys.exit(shelflab(["tune", "--model", sys.argv[1], "--resume"]))
