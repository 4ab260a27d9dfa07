"""evaluate@<model>: retrieve for the valid/test queries, score with the harness, log to MLflow."""

import sys
import tempfile
from pathlib import Path

import polars as pl

from shelflab.atomic import atomic_dir, write_json, write_parquet, write_text
from shelflab.cli.stage import run_stage
from shelflab.config import experiment_name, find_root, load_params, tracking_uri
from shelflab.data_io.relabel import read_id_map, translate_ids
from shelflab.data_io.trec import write_run_trec
from shelflab.evaluation.harness import counts_line
from shelflab.evaluation.plots import importance_plot, metric_at_k_plot
from shelflab.layout import Layout
from shelflab.pipeline.built import build_times, open_built_model
from shelflab.pipeline.evaluate import evaluate_model
from shelflab.pipeline.skipped import write_skipped_evaluation
from shelflab.registry.pipeline_model import register_pipeline, registered_name
from shelflab.registry.tracking import (
    data_hash,
    evaluation_inputs,
    git_commit,
    log_evaluation,
    metric_key,
)


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
    reason = type(model).unavailable_reason(model.params)
    if reason is not None:  # e.g. an LLM reranker without an endpoint: never a hard failure
        model.close()
        write_skipped_evaluation(layout, name, reason)
        print(f"evaluate@{name}: {reason}")
        return
    try:
        report = evaluate_model(
            model,
            pl.read_parquet(inputs[0]).select("query_id", model.query_input),
            pl.read_parquet(layout.qrels),
            pl.read_parquet(layout.splits),
            params["evaluate"],
        )
    finally:
        model.close()

    # what building the model cost: a leaderboard column and MLflow metrics of the run
    report.summary["_build"] = build_times(layout, name)
    report.mlflow_metrics.update(
        {f"{stage.removesuffix('_s')}_wall_s": s for stage, s in report.summary["_build"].items()}
    )
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

    tags = {
        "git_commit": git_commit(root),
        "data_hash": data_hash(inputs),
        "track": params["mlflow"]["track"],
        "dataset": params["data"]["name"],
        "model_family": model.family,
    }
    with tempfile.TemporaryDirectory() as extra:
        run_id = _log(root, params, name, model, report, artifacts, tags, Path(extra))
    version = _register(root, params, layout, name, model, report, run_id, tags)
    # where the registry keeps this evaluation: the promote stage reads it
    report.summary["_mlflow"] = {
        "run_id": run_id,
        "registered_model": version[0],
        "version": version[1],
    }
    write_json(report.summary, layout.model_metrics(name))
    test = report.summary.get("test", {})
    shown = ", ".join(f"{m}={v['mean']:.4f}" for m, v in test.items() if not m.startswith("_"))
    print(f"evaluate@{name}: test {shown} (mlflow run {run_id}, {version[0]} v{version[1]})")
    for split, summary in report.summary.items():
        if isinstance(summary, dict) and "_queries" in summary:
            print(f"evaluate@{name}: {split} {counts_line(summary['_queries'])}")


def _register(root, params, layout, name, model, report, run_id, tags) -> tuple[str, str]:
    """The built pipeline as a registered pyfunc version, with its model card."""
    queries = pl.read_parquet(layout.enriched / "queries.parquet")
    test_ids = pl.read_parquet(layout.splits).filter(pl.col("split") == "test")
    example = queries.join(test_ids, on="query_id", how="semi").head(2)
    id_map = read_id_map(layout.item_ids)
    if id_map is not None:  # the registered pipeline takes the source's item ids
        example = translate_ids(example, "history", id_map, to="source")
    registered = registered_name(params["mlflow"]["track"], params["data"]["name"])
    data = params["data"]
    version = register_pipeline(
        tracking_uri=tracking_uri(params, root),
        run_id=run_id,
        registered=registered,
        model_key=name,
        model=model,
        model_dir=layout.model_dir(name),
        index_dir=layout.index_dir(name),
        summary=report.summary,
        per_query=report.per_query_table(),
        queries=queries,
        example=example,
        data_info={
            "dataset": data["name"],
            "format": data["format"],
            "data hash (md5 of the pipeline inputs)": tags["data_hash"],
            "split": split_description(params["split"]),
            "grades": f"{data.get('grade_mapping', 'as loaded')} mapping; relevant = grade >= "
            f"{params['evaluate']['relevance_threshold']}",
            "git commit": tags["git_commit"],
        },
        metrics=params["leaderboard"]["metrics"],
        tags=tags,
    )
    return registered, version


def split_description(split: dict) -> str:
    if split.get("method") == "leave_one_out":
        return (
            "leave-one-out per user (last item test, second-to-last valid), users with fewer "
            f"than {split.get('min_length', 3)} items quarantined; full ranking"
        )
    if split.get("method") == "time":
        return f"global time split, fractions {split['fractions']}"
    return f"by query, fractions {split['fractions']}, seed {split['seed']}"


def _log(root, params, name, model, report, artifacts, tags, extra: Path) -> str:
    """One MLflow run; learned rankers also get their feature-importance plot (MLflow only).
    The run lists the queries and qrels of each evaluated split and the catalog it read (its
    Dataset column); the UI's leaderboard view shows the test leaderboard metrics."""
    if hasattr(model, "feature_importance"):
        png = extra / "feature_importance.png"
        title = f"{name}: feature importance"
        artifacts = [*artifacts, importance_plot(model.feature_importance(), title, png)]
    layout = Layout(root)
    inputs = evaluation_inputs(
        params["data"]["name"],
        queries=layout.enriched / "queries.parquet",
        qrels=layout.qrels,
        splits=layout.splits,
        items=layout.enriched / "items.parquet",
        split_names=report.runs,
    )
    return log_evaluation(
        tracking_uri=tracking_uri(params, root),
        experiment=experiment_name(params),
        model_name=name,
        params={"model": model.params, "evaluate": params["evaluate"]},
        metrics=report.mlflow_metrics,
        tags=tags,
        artifacts=artifacts,
        curve_steps=report.curve_steps(),
        inputs=inputs,
        shown_metrics=[metric_key("test", m) for m in params["leaderboard"]["metrics"]],
    )


if __name__ == "__main__":
    run_stage(f"evaluate@{sys.argv[1]}", main, sys.argv[1])
