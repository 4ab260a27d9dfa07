#!/usr/bin/env bash
# Installs (if needed), reproduces every pipeline on the configured data (the shipped samples by
# default: search at the root, reviews in tracks/reviews, next-item in tracks/nextitem), registers
# every pipeline, promotes a champion per track, writes the drift reports, and prints the
# leaderboards, the champions'
# alias history and the drift verdicts.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO_ROOT"
bash scripts/bootstrap.sh
if [[ $# -eq 0 ]]; then dvc repro -P; else dvc repro "$@"; fi
shelflab leaderboard
shelflab history
cd tracks/reviews
shelflab leaderboard
shelflab history
for summary in reports/drift/*/summary.json; do
  python -c "import json,sys; s=json.load(open(sys.argv[1])); print(sys.argv[1], 'dataset_drift:', s['dataset_drift'], 'drift_share:', round(s['drift_share'], 2), 'embedding score:', round(s['embeddings']['score'], 3))" "$summary"
done
cd ../nextitem
shelflab leaderboard
shelflab history
