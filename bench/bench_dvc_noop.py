"""A no-op `dvc repro -P` of this repo against DVC's own floor, side by side.

The floor is a throwaway git + DVC repo with the same number of stages in the same number of
dvc.yaml files as this repo, each stage trivial (one dep, one params key, one output), fully
reproduced once. Both no-ops are timed `--repeat` times, alternating; the ratio of the medians
is printed. Run from the repo root after a full `dvc repro -P` (nothing to do):

    python bench/bench_dvc_noop.py --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PIPELINES = ["dvc.yaml", "tracks/reviews/dvc.yaml", "tracks/nextitem/dvc.yaml"]


def stage_counts(root: Path) -> list[int]:
    """Stages per dvc.yaml as DVC ran them (foreach stages expanded): the entries of each
    pipeline's dvc.lock."""
    counts = []
    for pipeline in PIPELINES:
        lock = (root / pipeline).with_name("dvc.lock")
        counts.append(len(yaml.safe_load(lock.read_text())["stages"]) if lock.exists() else 0)
    return counts


def floor_repo(where: Path, counts: list[int]) -> Path:
    """A git + DVC repo of trivial stages, `counts[i]` of them in PIPELINES[i]."""
    run = lambda *cmd: subprocess.run(cmd, cwd=where, check=True, capture_output=True)  # noqa: E731
    run("git", "init", "-q")
    run("dvc", "init", "-q")
    for pipeline, n in zip(PIPELINES, counts, strict=True):
        folder = (where / pipeline).parent
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "params.yaml").write_text(yaml.safe_dump({f"p{i}": i for i in range(n)}))
        (folder / "input.txt").write_text("input\n")
        stages = {
            f"s{i}": {
                "cmd": f"echo {i} > out{i}.txt",
                "deps": ["input.txt"],
                "params": [f"p{i}"],
                "outs": [f"out{i}.txt"],
            }
            for i in range(n)
        }
        (where / pipeline).write_text(yaml.safe_dump({"stages": stages}))
    run("dvc", "repro", "-P", "-q")
    return where


def noop_seconds(root: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(["dvc", "repro", "-P"], cwd=root, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or "Running stage" in done.stdout:
        sys.exit(f"{root}: `dvc repro -P` is not a no-op here (run it to the end first)")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path.cwd()
    counts = stage_counts(root)
    with tempfile.TemporaryDirectory(prefix="dvc-floor-") as tmp:
        floor = floor_repo(Path(tmp), counts)
        ours, base = [], []
        for _ in range(args.repeat):
            base.append(noop_seconds(floor))
            ours.append(noop_seconds(root))
    o, b = statistics.median(ours), statistics.median(base)
    per_file = dict(zip(PIPELINES, counts, strict=True))
    print(f"stages per dvc.yaml: {per_file} ({sum(counts)} in all)")
    print(f"no-op dvc repro -P, median of {args.repeat}: shelflab {o:.2f} s, floor {b:.2f} s")
    print(f"ratio: {o / b:.2f}x DVC's floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
