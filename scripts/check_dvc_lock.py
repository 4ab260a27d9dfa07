"""Fails when a committed dvc.lock disagrees with the committed code, data or params.

`dvc status` on a clean checkout lists every output as missing ("not in cache", and the deps
made by other stages as "deleted"): that is expected. A dep or param that is "modified" or
"new" is not: the lock was written for other code or params, and `dvc repro` would rerun that
stage. Checks every dvc.yaml of the repo (all tracks). Exit 1 with one line per stale stage.
"""

import json
import subprocess
import sys

STALE = {"modified", "new"}


def stale_deps(status: dict) -> list[str]:
    problems = []
    for stage, changes in status.items():
        for change in changes:
            if not isinstance(change, dict):  # e.g. "always changed"
                problems.append(f"{stage}: {change}")
                continue
            for path, state in change.get("changed deps", {}).items():
                if isinstance(state, dict):  # a params file: {key: state}
                    problems += [f"{stage}: param {path}:{k} {s}" for k, s in state.items()]
                elif state in STALE:
                    problems.append(f"{stage}: {path} {state}")
    return problems


def main() -> int:
    proc = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"dvc status failed: {proc.stderr.strip()}", file=sys.stderr)
        return 1
    problems = stale_deps(json.loads(proc.stdout or "{}"))
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
