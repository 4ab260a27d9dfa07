#!/usr/bin/env bash
# Quick start: install, reproduce the three tracks on the shipped samples (search at the root,
# reviews in tracks/reviews, next-item in tracks/nextitem: train, register, promote a champion
# per track, drift reports), then print the leaderboards, the champions' alias history, the
# drift verdicts and each stage's wall time.
#
#   bash scripts/run.sh              # quick budgets (the committed params.yaml files)
#   bash scripts/run.sh --thorough   # heavier sample budgets: writes each track's
#                                    # params.thorough.yaml into its params.yaml, then repro
#   bash scripts/run.sh --full [search|reviews|nextitem]
#                                    # one track on its full data (the track's params.full.yaml
#                                    # into its params.yaml, then `dvc repro` of that track);
#                                    # search: Home Depot, all six models tuned, 38 min on 2 cores
#   bash scripts/run.sh --full reviews:gift-cards
#                                    # another profile of a track: its params.full-gift-cards.yaml
#   bash scripts/run.sh --full nextitem:beauty
#                                    # S3-Rec Beauty: tracks/nextitem/params.full-beauty.yaml
#   bash scripts/run.sh TARGET...    # `dvc repro TARGET...` instead of every track
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# what a person reads: no MLflow INFO lines, no library warnings, no weight-loading bars
export MLFLOW_LOGGING_LEVEL="${MLFLOW_LOGGING_LEVEL:-WARNING}" PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}" \
  HF_HUB_DISABLE_PROGRESS_BARS=1 MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false
cd "$REPO_ROOT"
start=$SECONDS
bash scripts/bootstrap.sh --runtime  # no test tools: the quick start needs none
install_s=$((SECONDS - start))

tracks=(. tracks/reviews tracks/nextitem)
case "${1:-}" in
  --thorough)
    shift
    for track in "${tracks[@]}"; do
      python scripts/apply_params.py "$track/params.thorough.yaml" "$track/params.yaml"
    done ;;
  --full)
    shift
    track="${1:-search}" profile=full
    if [[ "$track" == *:* ]]; then profile="full-${track#*:}" track="${track%%:*}"; fi
    case "$track" in
      search) tracks=(.) ;;
      reviews | nextitem) tracks=("tracks/$track") ;;
      *) echo "run.sh: --full takes search, reviews or nextitem[:PROFILE], not '$1'" >&2; exit 1 ;;
    esac
    overlay="${tracks[0]}/params.$profile.yaml"
    [[ -f "$overlay" ]] || { echo "run.sh: no profile $overlay" >&2; exit 1; }
    [[ $# -eq 0 ]] || shift
    python scripts/apply_params.py "$overlay" "${tracks[0]}/params.yaml"
    if [[ $# -eq 0 ]]; then set -- "${tracks[0]}/dvc.yaml"; fi ;;
esac
repro_start=$SECONDS
if [[ $# -eq 0 ]]; then set -- -P; fi
dvc repro "$@" 2>&1 | python scripts/stage_times.py
repro_s=$((SECONDS - repro_start))

heading() { printf '\n== %s ==\n' "$1"; }
# the three tracks' reports side by side (each command loads MLflow), printed in order
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
i=0 pids=()
for track in "${tracks[@]}"; do
  i=$((i + 1))
  (
    cd "$track"
    heading "leaderboard: $(basename "$(pwd -P)")"
    shelflab leaderboard
    heading "champion history"
    shelflab history
  ) >"$reports/$i" 2>&1 &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
cat "$reports"/*
[[ $failed -eq 0 ]] || { echo "run.sh: a leaderboard or history command failed (above)" >&2; exit 1; }
heading "stage timings (dvc metrics show)"
(cd "${tracks[0]}" && dvc metrics show metrics/timings --precision 1 2>/dev/null | head -n 120) || true
[[ ${#tracks[@]} -gt 1 ]] || { printf '\nrun.sh: install %d s, dvc repro %d s, %d s in all\n' "$install_s" "$repro_s" "$((SECONDS - start))"; exit 0; }
heading "drift verdicts (tracks/reviews)"
for summary in tracks/reviews/reports/drift/*/summary.json; do
  python -c "import json,sys; s=json.load(open(sys.argv[1])); print(sys.argv[1], 'dataset_drift:', s['dataset_drift'], 'drift_share:', round(s['drift_share'], 2), 'embedding score:', round(s['embeddings']['score'], 3))" "$summary"
done
printf '\nrun.sh: install %d s, dvc repro %d s, %d s in all\n' "$install_s" "$repro_s" "$((SECONDS - start))"
