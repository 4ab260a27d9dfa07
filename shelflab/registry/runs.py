"""Evaluation runs read back from MLflow: the latest per-query table of every model, the
input of `shelflab leaderboard` and the HTML report."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl

from shelflab.errors import ConfigError
from shelflab.registry.tracking import use_tracking_uri

BUILD_STAGES = ("train", "index")  # their wall seconds are logged as <stage>_wall_s
QUERY_COUNTS = ("missing_from_run", "without_relevant", "run_ignored")


def latest_per_query(
    uri: str, experiment: str, split: str, latency: dict[str, dict[str, float]] | None = None
) -> dict[str, pl.DataFrame]:
    """model name -> per-query metrics of its most recent evaluation run; `latency`, when
    given, is filled with the run's per-query latency figures (p50_ms, p95_ms) on `split` and
    the wall seconds of the model's train@ and index@ stages (train_s, index_s)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from shelflab.registry.tracking import KIND_TAG, MODEL_TAG, looks_at_test

    use_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        known = [e.name for e in client.search_experiments()]
        raise ConfigError(
            f"no MLflow experiment {experiment!r} at {uri} "
            f"(known: {', '.join(known) or 'none'}; run `dvc repro` first)"
        )
    # finished runs only: a stage that failed midway leaves a run without its per-query table
    runs = client.search_runs(
        [exp.experiment_id],
        f"tags.`{KIND_TAG}` = 'evaluation' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    out: dict[str, pl.DataFrame] = {}
    # evaluation runs that scored the test split, per model family (the leaderboard's
    # "test looks" column): every look spends some of the split's honesty
    looks: dict[str, int] = {}
    for run in runs:
        if looks_at_test(run.data.metrics):
            family = run.data.tags.get("model_family", run.data.tags.get(MODEL_TAG, ""))
            looks[family] = looks.get(family, 0) + 1
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            name = run.data.tags.get(MODEL_TAG)
            if not name or name in out:
                continue
            local = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path=f"{name}.parquet", dst_path=tmp
            )
            table = pl.read_parquet(Path(local))
            out[name] = table.filter(pl.col("split") == split)
            if latency is not None:
                m = run.data.metrics
                latency[name] = {
                    c: m[f"{split}_latency_{c}"]
                    for c in ("p50_ms", "p95_ms")
                    if f"{split}_latency_{c}" in m
                }
                latency[name].update(
                    {f"{s}_s": m[f"{s}_wall_s"] for s in BUILD_STAGES if f"{s}_wall_s" in m}
                )
                family = run.data.tags.get("model_family", name)
                latency[name]["test_looks"] = float(looks.get(family, 0))
                # what the split's means counted (evaluate@ logs them; older runs lack them)
                for count in QUERY_COUNTS:
                    if f"{split}_queries_{count}" in m:
                        latency[name][f"queries_{count}"] = m[f"{split}_queries_{count}"]
    if not out:
        raise ConfigError(f"experiment {experiment!r} has no evaluation runs")
    return out
