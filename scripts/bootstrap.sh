#!/usr/bin/env bash
# Installs ShelfLab and its pinned stack into .venv/ at the repo root, with the test tools
# (the `dev` extra: pytest, ruff, ranx, ...) unless called with --runtime (the quick start).
# Idempotent: when pyproject.toml has not changed since the last successful install of at
# least what is asked for, it does nothing.
# Installs nothing system-wide (the test suite's Chromium lives in scripts/test.sh).
# pip's own configuration picks the index: set PIP_INDEX_URL / PIP_EXTRA_INDEX_URL to use yours.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

PY="${PYTHON:-python3}"
STAMP=.venv/.shelflab-installed
mode=dev target='.[dev]'
if [[ "${1:-}" == "--runtime" ]]; then mode=runtime target='.'; fi
hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$have" == "$hash dev" || "$have" == "$hash $mode" ]] \
  && .venv/bin/python -c 'import shelflab' 2>/dev/null; then
  echo "bootstrap: .venv is up to date"
  exit 0
fi

start=$SECONDS
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
: >.venv/pip.log  # this install's output only
# pip's output goes to .venv/pip.log; a reader sees it only when an install fails.
pip_quiet() {
  if ! .venv/bin/python -m pip install -q "$@" >>.venv/pip.log 2>&1; then
    tail -n 40 .venv/pip.log >&2
    return 1
  fi
}
pip_quiet --upgrade pip
# torch must be a CPU build: a plain `torch` requirement pulls a multi-GB CUDA build. A CPU
# wheel in SHELFLAB_WHEELS (default /opt/wheels) is preferred; otherwise pass a CPU wheel index
# through PIP_EXTRA_INDEX_URL.
wheels="${SHELFLAB_WHEELS:-/opt/wheels}"
torch_src=()
[[ -d "$wheels" ]] && torch_src=(--find-links "$wheels")
# pip byte-compiles every installed file on one core; compileall does the same on all cores
# (half the install time on 2 cores; a syntax error in some package's test data is not ours).
pip_quiet --no-compile "${torch_src[@]}" 'torch==2.13.0'
pip_quiet --no-compile "${torch_src[@]}" -e "$target"
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
.venv/bin/python -m compileall -q -j 0 "$site" >>.venv/pip.log 2>&1 || true
echo "$hash $mode" >"$STAMP"
echo "bootstrap: installed into .venv ($mode) in $((SECONDS - start)) s"
