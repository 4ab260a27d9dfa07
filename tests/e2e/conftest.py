"""The e2e tier: one track per module, reproduced with real DVC in a temp git repo from a small
committed params file (tests/e2e/params/<track>.yaml), real MLflow (sqlite) and real models.

`reproduce(track, params)` (a session fixture; each module calls it from its own module-scoped
fixture) copies the working tree (git-tracked and untracked-not-ignored files, without tests/
and bench/ and without every track's generated files), swaps in the small params file, makes a
git repo with a local DVC remote and runs `dvc repro` in the track's folder: that track only.
DVC commands run in the track's folder, so stages are named as in its dvc.yaml (`train@bm25`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

BIN = Path(sys.executable).parent
PARAMS_DIR = Path(__file__).resolve().parent / "params"
TRACKS = (Path("."), Path("tracks") / "reviews", Path("tracks") / "nextitem")
SKIPPED = ("tests/", "bench/")
GENERATED = ("dvc.lock", "metrics", "plots", "reports", "tuned", "manifests")
GIT_USER = ["-c", "user.name=t", "-c", "user.email=t@t"]


def sh(
    args: list[str], cwd: Path, check: bool = True, code: Path | None = None
) -> subprocess.CompletedProcess:
    """Run a command with the venv first on PATH and no inherited MLflow URI (the stages use
    the temp repo's own sqlite store). `code`: a repo copy whose `shelflab` is imported instead
    of the editable install's (the checkout under test), so the stages, stages/code.py's
    manifests and the CLI all run the copy's code."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    for name in ("SHELFLAB_LLM_URL", "SHELFLAB_LLM_MODEL"):  # llm_rerank is skipped in the tests
        env.pop(name, None)
    env.pop("PYTHONPATH", None)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def commit(repo: Path, message: str) -> None:
    sh(["git", "add", "-A"], repo)
    sh(["git", *GIT_USER, "commit", "-qm", message], repo)


@dataclass
class Track:
    """One track reproduced in a temp repo. `root`: the repo; `dir`: the track's folder."""

    root: Path
    dir: Path
    remote: Path
    first_run: set[str]  # the stages the first `dvc repro` ran

    def sh(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        """A command in the track's folder."""
        return sh([str(a) for a in args], self.dir, check=check, code=self.root)

    def repro(self, *targets: str) -> set[str]:
        """`dvc repro` of this track (or of `targets`): the stages that ran."""
        return ran_stages(self.sh("dvc", "repro", *targets).stdout)

    def stale(self) -> set[str]:
        """The stages of this track's dvc.yaml that `dvc repro` would run now."""
        out = self.sh("dvc", "status", "--json", "dvc.yaml").stdout
        return set(json.loads(out or "{}"))

    def up_to_date(self) -> bool:
        return "up to date" in self.sh("dvc", "status", "dvc.yaml").stdout

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.dir / "params.yaml").read_text())

    def models(self) -> list[str]:
        return list(self.params()["models"])

    def json(self, *parts: str) -> Any:
        return json.loads(self.dir.joinpath(*parts).read_text())

    def commit(self, message: str) -> None:
        commit(self.root, message)

    def clone(self, dest: Path) -> Track:
        """A git clone of the repo at `dest`, with the same DVC remote (nothing pulled)."""
        sh(["git", "clone", "-q", str(self.root), str(dest)], dest.parent)
        sh(["dvc", "remote", "modify", "--local", "storage", "url", str(self.remote)], dest)
        track = dest / self.dir.relative_to(self.root)
        return Track(root=dest, dir=track, remote=self.remote, first_run=set())


def copy_tree(repo_root: Path, work: Path) -> None:
    listed = sh(["git", "ls-files", "-co", "--exclude-standard", "-z"], repo_root).stdout
    for rel in filter(None, listed.split("\0")):
        src = repo_root / rel
        if src.is_file() and not rel.startswith(SKIPPED):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / rel)
    for track in TRACKS:
        for generated in GENERATED:
            target = work / track / generated
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


@pytest.fixture(scope="session")
def reproduce(tmp_path_factory, repo_root):
    """reproduce("tracks/reviews", "reviews.yaml") -> Track, after its first `dvc repro`."""

    def build(track: str, params: str) -> Track:
        base = tmp_path_factory.mktemp(f"e2e-{Path(track).name or 'search'}")
        work, remote = base / "repo", base / "dvc-remote"
        copy_tree(repo_root, work)
        shutil.copyfile(PARAMS_DIR / params, work / track / "params.yaml")
        sh(["git", "init", "-q"], work)
        sh(["dvc", "remote", "modify", "--local", "storage", "url", str(remote)], work)
        commit(work, "init")
        first = ran_stages(sh(["dvc", "repro"], work / track, code=work).stdout)
        return Track(root=work, dir=work / track, remote=remote, first_run=first)

    return build


@pytest.fixture(scope="session")
def python_bin() -> Path:
    return BIN / "python"
