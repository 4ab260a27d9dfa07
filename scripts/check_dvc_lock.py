"""Fails when a committed dvc.lock disagrees with the committed code, data or params.

`dvc status` on a clean checkout lists every output as missing ("not in cache", and the deps
made by other stages as "deleted"): that is expected. A dep or param that is "modified" or
"new" is not: the lock was written for other code or params, and `dvc repro` would rerun that
stage. A dep that another stage writes (or a folder holding such outputs) is generated data, so
only source deps count. Checks every dvc.yaml of the repo (all tracks). Exit 1 with one line per
stale dep.
"""

import sys
from pathlib import Path

STALE = {"modified", "new"}


def generated(path: Path, outs: list[Path]) -> bool:
    return any(path == o or path.is_relative_to(o) or o.is_relative_to(path) for o in outs)


def stale_deps(status: dict, root: Path, outs: list[Path]) -> list[str]:
    problems = []
    for stage, changes in status.items():
        for change in changes:
            if not isinstance(change, dict):  # e.g. "always changed"
                problems.append(f"{stage}: {change}")
                continue
            for path, state in change.get("changed deps", {}).items():
                if isinstance(state, dict):  # a params file: {key: state}
                    problems += [f"{stage}: param {path}:{k} {s}" for k, s in state.items()]
                elif state in STALE and not generated((root / path).resolve(), outs):
                    problems.append(f"{stage}: {path} {state}")
    return problems


def main() -> int:
    from dvc.repo import Repo

    with Repo() as repo:
        root = Path(repo.root_dir).resolve()
        outs = [Path(o.fs_path).resolve() for o in repo.index.outs]
        problems = stale_deps(repo.status(), root, outs)
    for line in problems:
        print(f"stale dvc.lock: {line}", file=sys.stderr)
    if problems:
        print(
            "run `dvc repro -P` (or `dvc commit` if outputs are unchanged) and commit the locks",
            file=sys.stderr,
        )
        return 1
    print("dvc.lock: every stage's code, data and params match the committed locks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
