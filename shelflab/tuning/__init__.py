"""Hyper-parameter tuning with Optuna (`tune@<model>` stages, `shelflab tune`).

Import from the defining modules (this file re-exports nothing, so a stage that only reads a
tuned JSON does not depend on the study code): `run.tune_from_params` (params.yaml ->
tuned/<model>.json, what the stage and the CLI run), `study.tune_model` -> `TuneResult` (one
study), `tuned.write_tuned`, `tuned.apply_tuned`, `tuned.tuned_spec` (what train@<model>
builds), `settings.model_config`.

Modules: `study` (create/resume a study, run its trials; the policies: budget, workers, resume,
determinism), `settings` (the `tune` section, sampler, pruner), `storage` (storage URLs, study
names, stale trials), `workers` (the trial loop, worker processes), `objective` (a spec's valid
score), `spaces` (the space syntax), `results`, `tracking` (MLflow runs), `tuned` (the JSON
files), `run` (the stage/CLI entry point).
"""
