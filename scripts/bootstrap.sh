#!/usr/bin/env bash
# Installs ShelfLab and its pinned stack into .venv/ at the repo root. Idempotent: when
# pyproject.toml has not changed since the last successful install, it does nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"

# Debian's Chromium drives the HTML report test (tests/registry/test_report.py) headless.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
  echo "bootstrap: installing Debian's chromium (report test)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >/dev/null \
    || echo "bootstrap: chromium could not be installed; the report test will say so" >&2
fi

PY="${PYTHON:-python3}"
STAMP=.venv/.shelflab-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && .venv/bin/python -c 'import shelflab' 2>/dev/null; then
  echo "bootstrap: .venv is up to date"
  exit 0
fi

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch must come from a CPU wheel: a plain `torch` requirement pulls a multi-GB CUDA build.
torch_src=(--index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple)
if compgen -G "/opt/wheels/torch-2.13.0+cpu-*.whl" >/dev/null; then
  torch_src=(--find-links /opt/wheels)
fi
.venv/bin/python -m pip install "${torch_src[@]}" 'torch==2.13.0'
.venv/bin/python -m pip install "${torch_src[@]}" -e '.[dev]'
echo "$want" >"$STAMP"
echo "bootstrap: installed into .venv"
