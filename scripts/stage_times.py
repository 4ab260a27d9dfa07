"""Filter for `dvc repro` output (stdin): passes the stages' own lines through, drops DVC's and
MLflow's housekeeping chatter, and ends with each stage's wall time, slowest first.

    dvc repro -P 2>&1 | python scripts/stage_times.py
"""

import re
import sys
import time

NOISE = re.compile(
    r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO mlflow|INFO  \[alembic|"
    r"To track the changes with git|\s+git add |To enable auto staging|\s+dvc config core"
    r"|Use `dvc push`|Updating lock file|\s*$)"
)
STAGE = re.compile(r"Running stage '([^']+)'")


def main() -> int:
    start = last = time.perf_counter()
    current, times = None, []
    for line in sys.stdin:
        match = STAGE.search(line)
        now = time.perf_counter()
        if match:
            if current:
                times.append((now - last, current))
            current, last = match.group(1), now
        if not NOISE.match(line):
            sys.stdout.write(line)
            sys.stdout.flush()
    if current:
        times.append((time.perf_counter() - last, current))
    total = time.perf_counter() - start
    if times:
        print(f"\nstage wall times ({len(times)} stages, {total:.0f} s in all), slowest first:")
        for seconds, name in sorted(times, reverse=True):
            print(f"  {seconds:7.1f} s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
