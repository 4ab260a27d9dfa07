#!/usr/bin/env bash
# Installs (if needed), reproduces the pipeline on the configured data (the shipped sample by
# default), registers every pipeline, promotes a champion, and prints the leaderboard and the
# champion's alias history.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/bootstrap.sh
dvc repro "$@"
shelflab leaderboard
shelflab history
