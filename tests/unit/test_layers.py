"""The layer rule (pyproject.toml [tool.importlinter]) holds: import-linter's contracts run here,
and a deliberate upward import breaks them."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def lint() -> subprocess.CompletedProcess:
    args = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True)


def test_contracts_are_kept():
    proc = lint()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in proc.stdout


def test_an_upward_import_is_caught():
    """models importing the CLI must break the layers contract."""
    probe = REPO / "shelflab" / "models" / "_layer_probe.py"
    probe.write_text("import shelflab.cli.main  # noqa: F401\n")
    try:
        proc = lint()
    finally:
        probe.unlink()
    assert proc.returncode != 0
    assert "shelflab.models is not allowed to import shelflab.cli" in proc.stdout
