"""evaluate@<model>: retrieve for the valid/test queries, score with the harness, log to MLflow."""

import sys
import tempfile
from pathlib import Path

import polars as pl

from shelflab.atomic import atomic_dir, write_json, write_parquet, write_text
from shelflab.config import experiment_name, find_root, load_params, tracking_uri
from shelflab.data_io.trec import write_run_trec
from shelflab.layout import Layout
from shelflab.model_eval import evaluate_model
from shelflab.pipeline import open_built_model
from shelflab.plots import metric_at_k_plot
from shelflab.registry.tracking import data_hash, git_commit, log_evaluation


def main(name: str) -> None:
    root = find_root()
    params = load_params()
    layout = Layout(root)
    inputs = [
        layout.enriched / "queries.parquet",
        layout.enriched / "items.parquet",
        layout.qrels,
        layout.splits,
    ]
    model = open_built_model(layout, name)
    try:
        report = evaluate_model(
            model,
            pl.read_parquet(inputs[0]).select("query_id", "text"),
            pl.read_parquet(layout.qrels),
            pl.read_parquet(layout.splits),
            params["evaluate"],
        )
    finally:
        model.close()

    with atomic_dir(layout.runs_dir(name)) as tmp:
        for split, run in report.runs.items():
            run.write_parquet(tmp / f"{split}.parquet")
            write_run_trec(run, tmp / f"{split}.trec", tag=f"shelflab-{name}")
    write_parquet(report.per_query_table(), layout.per_query(name))
    write_json(report.summary, layout.model_metrics(name))
    artifacts = [
        layout.per_query(name),
        layout.model_metrics(name),
        *sorted(layout.runs_dir(name).glob("*.trec")),
    ]
    if report.curve is not None:
        csv, png = layout.curve(name), layout.curve(name).with_suffix(".png")
        write_text(report.curve.write_csv(), csv)
        metric_at_k_plot(report.curve, f"{name} — test split", png)
        artifacts += [csv, png]

    with tempfile.TemporaryDirectory() as extra:
        run_id = _log(root, params, name, model, report, artifacts, inputs, Path(extra))
    test = report.summary.get("test", {})
    shown = ", ".join(f"{m}={v['mean']:.4f}" for m, v in test.items() if not m.startswith("_"))
    print(f"evaluate@{name}: test {shown} (mlflow run {run_id})")


def _log(root, params, name, model, report, artifacts, inputs, extra: Path) -> str:
    """One MLflow run; learned rankers also get their feature-importance plot (MLflow only)."""
    if hasattr(model, "feature_importance"):
        from shelflab.models.xgb_ltr import plot_feature_importance

        artifacts = [*artifacts, plot_feature_importance(model, extra / "feature_importance.png")]
    return log_evaluation(
        tracking_uri=tracking_uri(params, root),
        experiment=experiment_name(params),
        model_name=name,
        params={"model": model.params, "evaluate": params["evaluate"]},
        metrics=report.mlflow_metrics,
        tags={
            "git_commit": git_commit(root),
            "data_hash": data_hash(inputs),
            "track": params["mlflow"]["track"],
            "dataset": params["data"]["name"],
            "model_family": model.family,
        },
        artifacts=artifacts,
        curve_steps=report.curve_steps(),
    )


if __name__ == "__main__":
    main(sys.argv[1])
