"""evaluate@<model>: retrieve for the valid/test queries, score with the harness, log to MLflow."""

import sys
import time

import polars as pl

from shelflab.atomic import atomic_dir, write_json, write_parquet, write_text
from shelflab.config import experiment_name, find_root, load_params, tracking_uri
from shelflab.data_io.trec import write_run_trec
from shelflab.evaluation.harness import evaluate
from shelflab.evaluation.significance import summarize
from shelflab.layout import Layout
from shelflab.pipeline import open_built_model, split_frame
from shelflab.plots import metric_at_k_plot
from shelflab.registry.tracking import data_hash, git_commit, log_evaluation, metric_key

CURVE_METRICS = ("ndcg", "recall", "precision", "hit", "map")


def main(name: str) -> None:
    root = find_root()
    params = load_params()
    cfg = params["evaluate"]
    layout = Layout(root)
    model = open_built_model(layout, name)
    queries = pl.read_parquet(layout.enriched / "queries.parquet").select("query_id", "text")
    qrels = pl.read_parquet(layout.qrels)
    splits = pl.read_parquet(layout.splits)
    boot = cfg["bootstrap"]
    curve_metrics = [f"{m}@{k}" for m in CURVE_METRICS for k in cfg["curve_ks"]]

    per_query, summary, mlflow_metrics, curve = [], {}, {}, None
    with atomic_dir(layout.runs_dir(name)) as runs_tmp:
        for split in cfg["splits"]:
            split_queries = split_frame(queries, splits, split)
            start = time.perf_counter()
            run = model.retrieve(split_queries, cfg["k"])
            seconds = time.perf_counter() - start
            run.write_parquet(runs_tmp / f"{split}.parquet")
            write_run_trec(run, runs_tmp / f"{split}.trec", tag=f"shelflab-{name}")
            wanted = list(
                dict.fromkeys(cfg["metrics"] + (curve_metrics if split == "test" else []))
            )
            result = evaluate(
                split_frame(qrels, splits, split),
                run,
                wanted,
                relevance_threshold=cfg["relevance_threshold"],
            )
            per_query.append(
                result.per_query.select(["query_id", *cfg["metrics"]]).with_columns(
                    pl.lit(split).alias("split")
                )
            )
            table = summarize(
                result.per_query,
                cfg["metrics"],
                n_resamples=boot["n_resamples"],
                confidence=boot["confidence"],
                seed=boot["seed"],
            )
            summary[split] = {
                row["metric"]: {k: row[k] for k in ("mean", "ci_low", "ci_high")}
                for row in table.iter_rows(named=True)
            }
            summary[split]["_queries"] = {
                "evaluated": result.n_queries,
                "no_relevant": result.n_without_relevant,
                "ms_per_query": 1000 * seconds / max(1, split_queries.height),
            }
            for row in table.iter_rows(named=True):
                mlflow_metrics[metric_key(split, row["metric"])] = row["mean"]
                mlflow_metrics[metric_key(split, row["metric"], "ci_low")] = row["ci_low"]
                mlflow_metrics[metric_key(split, row["metric"], "ci_high")] = row["ci_high"]
            mlflow_metrics[f"{split}_ms_per_query"] = summary[split]["_queries"]["ms_per_query"]
            mlflow_metrics[f"{split}_queries_evaluated"] = result.n_queries
            if split == "test":
                curve = curve_table(result.means, cfg["curve_ks"])
                diagnostics = model.diagnostics(split_queries, cfg["k"])
                summary[split]["_diagnostics"] = diagnostics
                mlflow_metrics.update({f"{split}_{k}": v for k, v in diagnostics.items()})

    per_query_all = pl.concat(per_query)
    write_parquet(per_query_all, layout.per_query(name))
    write_json(summary, layout.model_metrics(name))
    artifacts = [
        layout.per_query(name),
        layout.model_metrics(name),
        *sorted(layout.runs_dir(name).glob("*.trec")),
    ]
    curve_steps = {}
    if curve is not None:
        with_path = layout.curve(name)
        write_text(curve.write_csv(), with_path)
        png = with_path.with_suffix(".png")
        metric_at_k_plot(curve, f"{name} — test split", png)
        artifacts += [with_path, png]
        curve_steps = {
            f"test_{m}_at_k": dict(zip(curve["k"], curve[m], strict=True)) for m in CURVE_METRICS
        }

    inputs = [
        layout.enriched / "queries.parquet",
        layout.enriched / "items.parquet",
        layout.qrels,
        layout.splits,
    ]
    run_id = log_evaluation(
        tracking_uri=tracking_uri(params, root),
        experiment=experiment_name(params),
        model_name=name,
        params={"model": model.params, "evaluate": cfg},
        metrics=mlflow_metrics,
        tags={
            "git_commit": git_commit(root),
            "data_hash": data_hash(inputs),
            "track": params["mlflow"]["track"],
            "dataset": params["data"]["name"],
            "model_family": model.family,
        },
        artifacts=artifacts,
        curve_steps=curve_steps,
    )
    test = summary.get("test", {})
    shown = ", ".join(f"{m}={v['mean']:.4f}" for m, v in test.items() if not m.startswith("_"))
    print(f"evaluate@{name}: test {shown} (mlflow run {run_id})")


def curve_table(means: dict[str, float], ks: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"k": ks, **{m: [means[f"{m}@{k}"] for k in ks] for m in CURVE_METRICS}})


if __name__ == "__main__":
    main(sys.argv[1])
