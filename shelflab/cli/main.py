"""`shelflab` command line. Imports stay inside the handlers: `shelflab --help` must be fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DEFAULT_METRICS = "ndcg@10,ndcg@100,recall@10,recall@100,precision@10,mrr,hit@10,map@100"


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shelflab",
        description="Experiment registry and evaluation harness for e-commerce search and "
        "recommendation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ev = sub.add_parser(
        "evaluate", help="score a run, or a registered model on new queries, against qrels"
    )
    ev.add_argument("--qrels", required=True, help="TREC qrels (qid 0 docid grade) or table")
    source = ev.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="TREC run (qid Q0 docid rank score tag) or table")
    source.add_argument(
        "--model", help="registered pipeline: models:/NAME@ALIAS, models:/NAME/VERSION, runs:/..."
    )
    ev.add_argument("--queries", help="with --model: TSV query_id<TAB>text (no header) or Parquet")
    ev.add_argument("--k", type=int, default=100, help="with --model: run depth (default 100)")
    ev.add_argument(
        "--no-mlflow", action="store_true", help="with --model: do not log an evaluation run"
    )
    ev.add_argument(
        "--metrics",
        type=_csv,
        default=_csv(DEFAULT_METRICS),
        help=f"comma-separated metric names (default {DEFAULT_METRICS})",
    )
    ev.add_argument(
        "--relevance-threshold",
        type=float,
        default=1.0,
        help="binary metrics count grade >= this (default 1, as trec_eval)",
    )
    ev.add_argument("--per-query", metavar="OUT", help="write per-query values (.parquet/.csv)")
    ev.add_argument("--format", choices=["table", "json"], default="table")
    ev.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1, nothing written) when a qrels query is missing from the run or a run "
        "query is not in the qrels",
    )
    ev.set_defaults(handler=cmd_evaluate)

    rt = sub.add_parser("retrieve", help="run a model built by `dvc repro` on new queries")
    rt.add_argument("--model", required=True, help="model name from params.yaml")
    rt.add_argument(
        "--queries",
        required=True,
        help="TSV query_id<TAB>text (no header) or Parquet; for a next-item "
        "model the text is the history: item ids separated by spaces, oldest first",
    )
    rt.add_argument("--k", type=int, default=100)
    rt.add_argument("--out", required=True, help="TREC run file to write")
    rt.set_defaults(handler=cmd_retrieve)

    from shelflab.cli.registry import add_registry_parsers
    from shelflab.cli.tuning import add_tune_parser

    add_tune_parser(sub)
    add_registry_parsers(sub)
    from shelflab.cli.drift import add_drift_parser

    add_drift_parser(sub)

    lb = sub.add_parser("leaderboard", help="all models of an MLflow experiment, with CIs")
    lb.add_argument("--experiment", help="MLflow experiment (default from params.yaml)")
    lb.add_argument("--metric", help="sort metric (default leaderboard.metric in params.yaml)")
    lb.add_argument("--metrics", type=_csv, help="columns (default leaderboard.metrics)")
    lb.add_argument("--split", help="split (default leaderboard.split)")
    lb.add_argument("--baseline", help="model for the paired test (default leaderboard.baseline)")
    lb.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    lb.set_defaults(handler=cmd_leaderboard)
    return parser


def cmd_evaluate(args: argparse.Namespace) -> None:
    import json

    from shelflab.data_io.trec import read_qrels, read_run_checked
    from shelflab.evaluation.harness import evaluate
    from shelflab.evaluation.significance import summarize
    from shelflab.tables import write_table

    args.metrics = metric_labels(args.metrics)  # a typo fails before big files are read
    version = None
    if args.model:
        from shelflab.cli.registry import registered_run

        if not args.queries:
            raise SystemExit("shelflab: error: --model needs --queries")
        if args.k < 1:
            raise SystemExit("shelflab: error: --k must be at least 1")
        qrels, run, version = registered_run(args)
    else:
        if args.queries:
            raise SystemExit("shelflab: error: --queries goes with --model, not --run")
        qrels = read_qrels(args.qrels)
        run = read_run_checked(args.run)
    result = evaluate(
        qrels,
        run,
        args.metrics,
        relevance_threshold=args.relevance_threshold,
        qrels_source=args.qrels,
        run_source=args.model or args.run,
    )
    mismatch = result.mismatch()
    if args.strict and mismatch:
        from shelflab.errors import InputError

        raise InputError(
            f"run and qrels disagree (--strict): {mismatch}",
            path=args.model or args.run,
            expected=f"exactly the queries of {args.qrels}",
        )
    if args.model and not args.no_mlflow:
        from shelflab.cli.registry import log_registered_eval

        means = {m: result.means[m] for m in args.metrics}
        log_registered_eval(args, version, means, result.n_evaluated)
    if args.per_query:
        write_table(result.per_query, args.per_query)
    if args.format == "json":
        means = {m: result.means[m] for m in args.metrics}
        print(json.dumps({"metrics": means, "queries": result.counts()}))
        return
    summary = summarize(result.per_query, args.metrics)
    for row in summary.iter_rows(named=True):
        print(f"{row['metric']:<16} {row['mean']:.4f}  [{row['ci_low']:.4f}, {row['ci_high']:.4f}]")
    print(counts_footer(result))


def metric_labels(names: Sequence[str]) -> list[str]:
    """The canonical labels of `names`, once each and in order ('NDCG@10' -> 'ndcg@10');
    ConfigError on an unknown metric or a bad cutoff."""
    from shelflab.evaluation.metrics import parse_metric

    return list(dict.fromkeys(parse_metric(name.strip()).label for name in names))


def counts_footer(result) -> str:
    """What the means count, as trec_eval's `num_q` and more: evaluated queries, qrels queries
    missing from the run (scored 0), qrels queries without a relevant item (excluded), run
    queries not in the qrels (ignored); a warning line when the run and qrels disagree."""
    from shelflab.evaluation.harness import counts_line

    lines = [counts_line(result.counts())]
    mismatch = result.mismatch()
    if mismatch:
        lines.append(f"warning: {mismatch} (--strict makes this an error)")
    return "\n".join(lines)


def cmd_retrieve(args: argparse.Namespace) -> None:
    import polars as pl

    from shelflab.config import find_root
    from shelflab.contract import validate_run
    from shelflab.data_io.queries import read_queries
    from shelflab.data_io.relabel import SOURCE_IDS_FILE, read_id_map
    from shelflab.data_io.trec import write_run_trec
    from shelflab.layout import Layout
    from shelflab.pipeline.built import (
        load_text_normalization,
        open_built_model,
        retrieve_in_source_ids,
    )
    from shelflab.textnorm import normalize_frame

    if args.k < 1:
        raise SystemExit("shelflab: error: --k must be at least 1")
    layout = Layout(find_root())
    queries = read_queries(args.queries)
    model = open_built_model(layout, args.model)
    if model.query_input == "history":  # next-item: the text is the history, ids by spaces
        queries = queries.select(
            "query_id", pl.col("text").str.extract_all(r"\S+").alias("history")
        )
    else:
        queries = normalize_frame(queries, load_text_normalization(layout.index_dir(args.model)))
    # next-item on relabelled ids: histories and the run are in the source's item ids
    id_map = read_id_map(layout.index_dir(args.model) / SOURCE_IDS_FILE)
    queries = queries.select("query_id", model.query_input)
    run = retrieve_in_source_ids(model, queries, args.k, id_map)
    run = validate_run(run, "model run")
    write_run_trec(run, args.out, tag=f"shelflab-{args.model}")
    print(
        f"wrote {run.height} rows for {run['query_id'].n_unique()} queries to {args.out}",
        file=sys.stderr,
    )


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from shelflab.cli.leaderboard import show_leaderboard

    print(show_leaderboard(args))


def main(argv: Sequence[str] | None = None) -> int:
    from shelflab.config import quiet_environment
    from shelflab.errors import ShelfLabError

    quiet_environment()
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except ShelfLabError as exc:
        print(f"shelflab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
