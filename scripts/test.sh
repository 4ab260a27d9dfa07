#!/usr/bin/env bash
# The test command (CI runs exactly this): install, lint, layer contracts, committed dvc.lock
# files vs the code, then every tier (unit, integration, e2e) and the 15 slowest tests.
# Pass pytest arguments to narrow it, e.g. `bash scripts/test.sh -m unit`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/bootstrap.sh

# Debian's Chromium drives the HTML report test (tests/integration/test_report_chromium.py).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
  echo "test: installing Debian's chromium (report test)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >/dev/null 2>&1 \
    || echo "test: chromium could not be installed; the report test will say so" >&2
fi

ruff check .
if ! layers=$(lint-imports --no-cache 2>&1); then echo "$layers"; exit 1; fi
grep "^Contracts:" <<<"$layers"
python scripts/check_dvc_lock.py
set +e
# One pytest worker per core (pytest-xdist). A test file runs on one worker (loadfile), so its
# module fixtures (an e2e track's repro) run once. (xdist's loadgroup cannot group on pytest 9:
# it renames node ids, which pytest 9 no longer reads.) SHELFLAB_TEST_WORKERS=0: one process.
python -m pytest -n "${SHELFLAB_TEST_WORKERS:-logical}" --dist loadfile --durations=15 "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then echo "pytest: no tests collected"; exit 0; fi
exit $rc
