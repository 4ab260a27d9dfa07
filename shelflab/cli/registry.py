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
    import mlflow
    import polars as pl

    from shelflab.config import find_root, load_params, tracking_uri
    from shelflab.contract import validate_run
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
    version = _model_version(args.model)
    try:
        model = mlflow.pyfunc.load_model(args.model)
    except mlflow.exceptions.MlflowException as err:
        raise ConfigError(f"cannot load {args.model}: {err.message}") from None
    out = model.predict(queries.select("query_id", "text").to_pandas(), params={"k": args.k})
    return qrels, validate_run(pl.from_pandas(out), f"{args.model} run"), version


def _model_version(model_uri: str) -> Any:
    """The registry version behind models:/NAME@ALIAS or models:/NAME/VERSION (None otherwise)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from shelflab.errors import ConfigError

    if not model_uri.startswith("models:/"):
        return None
    ref = model_uri.removeprefix("models:/")
    client = MlflowClient()
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return client.get_model_version_by_alias(name, alias)
        name, _, number = ref.partition("/")
        return client.get_model_version(name, number)
    except mlflow.exceptions.MlflowException as err:
        raise ConfigError(f"{model_uri}: {err.message}") from None


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
