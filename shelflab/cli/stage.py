"""The one entry point of every stage script: quiet third-party output, time the stage, write
its timings file and turn a ShelfLab error into one line.

    if __name__ == "__main__":
        run_stage(f"train@{sys.argv[1]}", main, sys.argv[1])

The stage ends with `<stage>: wall .. s, CPU .. s, peak RSS .. MiB` and writes the same figures
to `metrics/timings/<stage>.json` (a DVC metrics file, so `dvc metrics show` lists every
stage's time). A ShelfLabError prints `<stage>: error: ...` on stderr and exits 1; any other
exception keeps its traceback. SHELFLAB_DEBUG=1 shows the traceback of ShelfLab errors too.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from shelflab.config import find_root, quiet_environment
from shelflab.errors import ShelfLabError
from shelflab.layout import Layout
from shelflab.timing import run_timed

# Third-party chatter that says nothing about the stage (progress bars meant for a terminal,
# per-call INFO lines); warnings and errors still show.
QUIET_ENV = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TQDM_DISABLE": "1",
}
QUIET_LOGGERS = ("mlflow", "alembic", "sentence_transformers", "httpx", "chromadb")
QUIET_WARNINGS = (
    # pyfunc models take a DataFrame whose columns the signature names; hints add nothing
    r".*[Tt]ype hint.*",
    r".*Add type hints to the `predict` method.*",
    # MLflow's advice to pin the Python environment of a logged model, once per log_model
    r".*Failed to resolve installed pip version.*",
)


def quiet_third_party() -> None:
    quiet_environment()
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def run_stage(label: str, main: Callable[..., Any], *args: Any) -> None:
    """Runs a stage's `main(*args)` (see the module docstring); exits with its int result."""
    quiet_third_party()
    out = Layout(find_root()).timings(label)
    try:
        result = run_timed(label, out, main, *args)
    except ShelfLabError as err:
        if os.environ.get("SHELFLAB_DEBUG") == "1":
            raise
        print(f"{label}: error: {err}", file=sys.stderr)
        sys.exit(1)
    if isinstance(result, int) and not isinstance(result, bool):
        sys.exit(result)
