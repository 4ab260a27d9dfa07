"""Opening the lockbox (`shelflab lockbox --model URI`): a registered pipeline scored on the
queries the split stage set aside, beside the test figure of the evaluation it was registered
from. Every opening is an MLflow run of `<registered model>-lockbox` with who and when, and the
version gets `shelflab.lockbox.*` tags; the command says how many times the lockbox was opened
before, because each opening spends some of it too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from shelflab.contract import HISTORY, ITEM_ID
from shelflab.data_io.relabel import translate_ids
from shelflab.evaluation.harness import counts_line
from shelflab.registry.aliases import model_version, who
from shelflab.registry.serving import predict_registered
from shelflab.registry.tracking import KIND_TAG, metric_key, use_experiment, use_tracking_uri

LOCKBOX_KIND = "lockbox"


@dataclass(frozen=True)
class LockboxResult:
    model_uri: str
    version: Any  # the MLflow ModelVersion (None for a runs:/ URI)
    table: pl.DataFrame  # metric, test, lockbox, ci_low, ci_high
    n_queries: int
    counts: dict[str, int]
    who: str
    when: str
    run_id: str
    earlier_openings: int

    def format(self) -> str:
        lines = [
            f"lockbox of {self.model_uri}: {self.n_queries} queries, opened by {self.who} "
            f"at {self.when} (opened {self.earlier_openings} time(s) before; MLflow run "
            f"{self.run_id})",
            f"{'metric':<16} {'test':>8}  {'lockbox':>8}  95% CI",
        ]
        for row in self.table.iter_rows(named=True):
            test = "n/a" if row["test"] is None else f"{row['test']:.4f}"
            lines.append(
                f"{row['metric']:<16} {test:>8}  {row['lockbox']:>8.4f}  "
                f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]"
            )
        lines.append(counts_line(self.counts))
        return "\n".join(lines)


def open_lockbox(
    tracking_uri: str,
    model_uri: str,
    queries: pl.DataFrame,
    qrels: pl.DataFrame,
    *,
    metrics: list[str],
    relevance_threshold: float,
    bootstrap: dict[str, Any],
    k: int = 100,
    id_map: pl.DataFrame | None = None,
) -> LockboxResult:
    """Score the registered pipeline `model_uri` on the lockbox `queries` (query_id + its
    input column) against `qrels`, log the opening and return the figures. With the track's
    `id_map` (next-item on relabelled ids) the histories go to the pipeline in the source's
    ids, as a user's would, and its run comes back to the track's."""
    import mlflow

    from shelflab.evaluation.harness import evaluate
    from shelflab.evaluation.significance import summarize

    use_tracking_uri(tracking_uri)
    version = model_version(model_uri)
    if id_map is not None:
        queries = translate_ids(queries, HISTORY, id_map, to="source")
    run = predict_registered(model_uri, queries, k)
    if id_map is not None:
        run = translate_ids(run, ITEM_ID, id_map, to="internal")
    result = evaluate(qrels, run, metrics, relevance_threshold, run_source=f"{model_uri} run")
    summary = summarize(result.per_query, metrics, **bootstrap)
    test = _test_figures(version, metrics)
    table = summary.select("metric", pl.col("mean").alias("lockbox"), "ci_low", "ci_high")
    table = table.with_columns(
        pl.Series("test", [test.get(m) for m in table["metric"]], dtype=pl.Float64)
    ).select("metric", "test", "lockbox", "ci_low", "ci_high")

    opened_by = who()
    when = datetime.now(UTC).isoformat(timespec="seconds")
    registered = version.name if version is not None else "unregistered"
    experiment = use_experiment(f"{registered}-lockbox")
    earlier = len(
        mlflow.search_runs([experiment.experiment_id], output_format="list", max_results=10000)
    )
    with mlflow.start_run(run_name=f"lockbox {model_uri}") as mlrun:
        mlflow.set_tags(
            {
                KIND_TAG: LOCKBOX_KIND,
                "model_uri": model_uri,
                "opened_by": opened_by,
                "opened_at": when,
                "opening": str(earlier + 1),
                **(
                    {"registered_model": version.name, "model_version": str(version.version)}
                    if version is not None
                    else {}
                ),
            }
        )
        mlflow.log_metrics(
            {
                metric_key(LOCKBOX_KIND, m): float(v)
                for m, v in zip(table["metric"], table["lockbox"], strict=True)
            }
            | {"lockbox_queries_evaluated": float(result.n_queries)}
        )
    if version is not None:
        client = mlflow.tracking.MlflowClient()
        for m, v in zip(table["metric"], table["lockbox"], strict=True):
            client.set_model_version_tag(
                version.name,
                version.version,
                f"shelflab.{metric_key(LOCKBOX_KIND, m)}",
                f"{v:.6f}",
            )
        client.set_model_version_tag(
            version.name, version.version, "shelflab.lockbox.opened", f"{opened_by} at {when}"
        )
    return LockboxResult(
        model_uri=model_uri,
        version=version,
        table=table,
        n_queries=result.n_queries,
        counts=result.counts(),
        who=opened_by,
        when=when,
        run_id=mlrun.info.run_id,
        earlier_openings=earlier,
    )


def _test_figures(version: Any, metrics: list[str]) -> dict[str, float]:
    """The test means of the evaluation run the version was registered from."""
    if version is None or not version.run_id:
        return {}
    import mlflow

    run = mlflow.tracking.MlflowClient().get_run(version.run_id)
    got = run.data.metrics
    return {m: got[metric_key("test", m)] for m in metrics if metric_key("test", m) in got}
