"""`shelflab promote | history | rollback` and `shelflab evaluate --model`: the registry side
of the command line (heavy imports inside the handlers)."""

from __future__ import annotations

import argparse
from typing import Any


def add_registry_parsers(sub: Any) -> None:
    pr = sub.add_parser("promote", help="promote a registered version if it beats the champion")
    pr.add_argument("--name", help="registered model (default shelflab-<track>-<dataset>)")
    pr.add_argument("--candidate", required=True, help="version number or evaluation run id")
    pr.add_argument("--metric", help="gate metric (default promote.metric in params.yaml)")
    pr.add_argument("--split", help="split compared (default promote.split)")
    pr.add_argument("--format", choices=["text", "json"], default="text")
    pr.set_defaults(handler=cmd_promote)

    hi = sub.add_parser("history", help="every champion/challenger move of a registered model")
    hi.add_argument("--name", help="registered model (default shelflab-<track>-<dataset>)")
    hi.add_argument("--format", choices=["table", "json"], default="table")
    hi.set_defaults(handler=cmd_history)

    rb = sub.add_parser("rollback", help="restore the previous champion")
    rb.add_argument("--name", help="registered model (default shelflab-<track>-<dataset>)")
    rb.add_argument("--why", default="", help="reason recorded in the history")
    rb.set_defaults(handler=cmd_rollback)

    lb = sub.add_parser(
        "lockbox",
        help="score a registered pipeline on the queries set aside by split.lockbox_fraction "
        "(deliberately: the opening is logged)",
    )
    lb.add_argument("--model", required=True, help="models:/NAME@champion or models:/NAME/N")
    lb.add_argument("--metrics", help="comma-separated (default leaderboard.metrics)")
    lb.add_argument("--k", type=int, default=None, help="run depth (default evaluate.k)")
    lb.add_argument("--format", choices=["table", "json"], default="table")
    lb.set_defaults(handler=cmd_lockbox)

    rp = sub.add_parser("report", help="static HTML page: leaderboard, curves, champion, history")
    rp.add_argument("--experiment", help="MLflow experiment (default from params.yaml)")
    rp.add_argument("--name", help="registered model (default shelflab-<track>-<dataset>)")
    rp.add_argument("--split", help="split (default leaderboard.split)")
    rp.add_argument("--out", required=True, help="directory to write index.html into")
    rp.set_defaults(handler=cmd_report)


def _context(args: argparse.Namespace) -> tuple[dict[str, Any], str, str]:
    from shelflab.config import find_root, load_params, tracking_uri
    from shelflab.registry.pipeline_model import registered_name

    params = load_params()
    uri = tracking_uri(params, find_root())
    name = args.name or registered_name(params["mlflow"]["track"], params["data"]["name"])
    return params, uri, name


def cmd_promote(args: argparse.Namespace) -> None:
    import json

    from shelflab.registry.promote import promote

    params, uri, name = _context(args)
    cfg = dict(params["promote"])
    if args.metric:
        cfg["metric"] = args.metric
    outcome = promote(uri, name, args.candidate, cfg, args.split or cfg["split"])
    if args.format == "json":
        d = outcome.decision.as_dict() if outcome.decision else None
        print(
            json.dumps(
                {
                    "name": name,
                    "candidate": outcome.candidate,
                    "champion_before": outcome.champion_before,
                    "champion_after": outcome.champion_after,
                    "decision": d,
                    "run_id": outcome.run_id,
                }
            )
        )
    else:
        print(outcome.summary())


def cmd_history(args: argparse.Namespace) -> None:
    import json

    from mlflow.tracking import MlflowClient
    from tabulate import tabulate

    from shelflab.registry.aliases import history

    _, uri, name = _context(args)
    moves = history(_client(MlflowClient, uri, name), name)
    if args.format == "json":
        print(json.dumps([json.loads(m.as_json()) for m in moves]))
        return
    rows = [
        [m.seq, m.when, m.alias, m.from_version or "-", m.to_version or "-", m.action, m.who, m.why]
        for m in moves
    ]
    print(
        tabulate(rows, headers=["#", "when (UTC)", "alias", "from", "to", "action", "who", "why"])
    )


def cmd_rollback(args: argparse.Namespace) -> None:
    from mlflow.tracking import MlflowClient

    from shelflab.registry.aliases import rollback

    _, uri, name = _context(args)
    entry = rollback(_client(MlflowClient, uri, name), uri, name, args.why)
    print(f"{name}: champion rolled back from version {entry.from_version} to {entry.to_version}")


def cmd_report(args: argparse.Namespace) -> None:
    from pathlib import Path

    from shelflab.config import experiment_name
    from shelflab.registry.report import build_report

    params, uri, name = _context(args)
    board = params["leaderboard"]
    path = build_report(
        uri=uri,
        experiment=args.experiment or experiment_name(params),
        registered=name,
        split=args.split or board["split"],
        metric=board["metric"],
        metrics=board["metrics"],
        baseline=board.get("baseline"),
        out_dir=Path(args.out),
    )
    print(f"report: {path}")


def _client(cls: Any, uri: str, name: str) -> Any:
    from shelflab.registry.aliases import require_registered
    from shelflab.registry.tracking import use_tracking_uri

    use_tracking_uri(uri)
    client = cls(uri)
    require_registered(client, name)
    return client


def registered_run(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """`shelflab evaluate --model URI --queries PATH --qrels PATH`: (qrels, run, version): the
    queries retrieved through the pyfunc; `log_registered_eval` records the scores."""

    from shelflab.config import find_root, load_params, tracking_uri
    from shelflab.data_io.queries import read_queries
    from shelflab.data_io.trec import read_qrels
    from shelflab.errors import ConfigError

    params = load_params()
    from shelflab.registry.tracking import use_tracking_uri

    use_tracking_uri(tracking_uri(params, find_root()))
    queries = read_queries(args.queries)
    qrels = read_qrels(args.qrels)
    common = set(queries["query_id"].to_list()) & set(qrels["query_id"].to_list())
    if not common:
        raise ConfigError(f"{args.queries} and {args.qrels} have no query id in common")
    from shelflab.registry.aliases import model_version
    from shelflab.registry.serving import predict_registered

    version = model_version(args.model)
    run = predict_registered(args.model, queries.select("query_id", "text"), args.k)
    return qrels, run, version


def log_registered_eval(args, version, means: dict[str, float], n: int) -> None:
    """An evaluation run tagged with (and, in MLflow 3, linked to) the model version."""
    import mlflow

    from shelflab.registry.tracking import KIND_TAG, metric_key, use_experiment

    name = version.name if version is not None else "unregistered"
    use_experiment(f"{name}-evaluations")
    with mlflow.start_run(run_name=f"{args.model} on {args.qrels}"):
        tags = {
            KIND_TAG: "registered-evaluation",
            "model_uri": args.model,
            "queries": str(args.queries),
            "qrels": str(args.qrels),
        }
        if version is not None:
            tags |= {
                "registered_model": version.name,
                "model_version": str(version.version),
                "model_run_id": version.run_id or "",
            }
        mlflow.set_tags(tags)
        model_id = getattr(version, "model_id", None)
        metrics = {metric_key("eval", m): v for m, v in means.items()} | {"queries_evaluated": n}
        if model_id:
            mlflow.log_metrics(metrics, model_id=model_id)
        else:
            mlflow.log_metrics(metrics)


def cmd_lockbox(args: argparse.Namespace) -> None:
    import json

    import polars as pl

    from shelflab.cli.main import metric_labels
    from shelflab.config import find_root, load_params, tracking_uri
    from shelflab.data_io.relabel import read_id_map
    from shelflab.errors import ConfigError
    from shelflab.layout import Layout
    from shelflab.protocols.lockbox import LOCKBOX
    from shelflab.registry.lockbox import open_lockbox

    root = find_root()
    params = load_params()
    layout = Layout(root)
    metrics = metric_labels(
        args.metrics.split(",") if args.metrics else params["leaderboard"]["metrics"]
    )
    if not layout.splits.is_file():
        raise ConfigError(f"{layout.splits}: no split table (run `dvc repro` first)")
    ids = pl.read_parquet(layout.splits).filter(pl.col("split") == LOCKBOX)["query_id"]
    if ids.len() == 0:
        raise ConfigError(
            "no lockbox queries: set split.lockbox_fraction in params.yaml (e.g. 0.2) and rerun "
            "`dvc repro` (the split is redone, so every model is re-evaluated without them)"
        )
    # raw query text (the pipeline normalises it, as for any new query), or the history
    raw = layout.processed / "queries.parquet"
    source = raw if raw.is_file() and "text" in pl.read_parquet_schema(raw) else None
    queries = pl.read_parquet(source or layout.enriched / "queries.parquet")
    column = "text" if "text" in queries.columns else "history"
    queries = queries.filter(pl.col("query_id").is_in(ids.implode())).select("query_id", column)
    qrels = pl.read_parquet(layout.qrels).filter(pl.col("query_id").is_in(ids.implode()))
    cfg = params["evaluate"]
    result = open_lockbox(
        tracking_uri(params, root),
        args.model,
        queries,
        qrels,
        metrics=metrics,
        relevance_threshold=cfg["relevance_threshold"],
        bootstrap=cfg["bootstrap"],
        k=args.k or cfg["k"],
        id_map=read_id_map(layout.item_ids),
    )
    if args.format == "json":
        print(json.dumps({"model": args.model, "rows": result.table.to_dicts(),
                          "queries": result.counts, "opened_by": result.who,
                          "opened_at": result.when, "run_id": result.run_id,
                          "earlier_openings": result.earlier_openings}))  # fmt: skip
        return
    print(result.format())
