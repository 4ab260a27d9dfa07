"""Trained models against bm25 on any Home Depot-format directory, outside DVC: the quick way
to see whether fine-tuning pays on a dataset before committing a full pipeline run to it.

Loads and splits the data exactly as the ingest/split/enrich stages do (params.yaml `data`,
`split`, `enrich`), fits each named model of params.yaml on the train split (early stopping on
valid), indexes the whole catalog, and scores the test split with the harness: ndcg@10 with a
bootstrap CI, the paired randomisation p-value against bm25, fit/index seconds and per-query
latency. `--set model.key=value` overrides a model param (e.g. training caps). Example:

    python bench/trained_models.py --data ../shared/data/home-depot-search-relevance \\
        --models bm25 biencoder_ft --set biencoder_ft.max_train_pairs=6000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl
from model_specs import model_specs  # bench/model_specs.py

from shelflab.config import find_root, load_params
from shelflab.data_io.loaders import load_search_dataset
from shelflab.evaluation.harness import evaluate
from shelflab.evaluation.significance import paired_test, summarize
from shelflab.models import ModelContext, TrainData, create
from shelflab.pipeline.built import split_frame
from shelflab.pipeline.evaluate import query_latency
from shelflab.protocols.random_split import split_queries
from shelflab.quarantine import Quarantine
from shelflab.textnorm import normalize_frame


def headroom(qrels: pl.DataFrame, run: pl.DataFrame, threshold: float) -> dict[str, float]:
    """What the judgments let a model score: `judged@10`, the share of its top-10 items that
    have any judgment (Home Depot judges only the few products shown per query, so an unjudged
    hit counts as non-relevant), and `oracle_ndcg@10`, the ndcg@10 of its own top-100 reordered
    by the true grades: the ceiling of any reranker over this run."""
    top = run.sort(["query_id", "score", "item_id"], descending=[False, True, True])
    top10 = top.group_by("query_id", maintain_order=True).head(10)
    judged = top10.join(
        qrels.select("query_id", "item_id", pl.lit(1).alias("_j")),
        on=["query_id", "item_id"],
        how="left",
    )
    evaluated = qrels.filter(pl.col("grade") >= threshold).select("query_id").unique()
    share = (
        judged.join(evaluated, on="query_id")
        .group_by("query_id")
        .agg((pl.col("_j").fill_null(0).sum() / 10).alias("j"))
    )
    oracle = (
        run.join(
            qrels.select("query_id", "item_id", "grade"), on=["query_id", "item_id"], how="left"
        )
        .with_columns((pl.col("grade").fill_null(0.0) * 1e6 + pl.col("score")).alias("score"))
        .drop("grade")
    )
    res = evaluate(qrels, oracle, ["ndcg@10"], threshold)
    return {"judged@10": float(share["j"].mean()), "oracle_ndcg@10": res.means["ndcg@10"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="directory of the data.format files")
    ap.add_argument("--models", nargs="+", default=["bm25", "biencoder_ft"])
    ap.add_argument("--set", nargs="*", default=[], help="model.key=value (YAML value)")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    ap.add_argument("--runs-dir", default=None, help="also write each test run (Parquet) here")
    args = ap.parse_args()
    params = load_params()
    root = find_root()
    specs = model_specs(params["models"], args.models, None, args.set)

    t0 = time.perf_counter()
    ds = load_search_dataset(
        params["data"]["format"],
        Path(args.data),
        grade_mapping=params["data"]["grade_mapping"],
        quarantine=Quarantine(),
    )
    cfg = params["split"]
    splits = split_queries(ds.queries, fractions=tuple(cfg["fractions"]), seed=cfg["seed"])
    items = normalize_frame(ds.items, params["enrich"]).select("item_id", "text")
    queries = normalize_frame(ds.queries, params["enrich"]).select("query_id", "text")
    part = {s: split_frame(queries, splits, s) for s in ("train", "valid", "test")}
    qrels = {s: split_frame(ds.qrels, splits, s) for s in ("train", "valid", "test")}
    train = TrainData(items, part["train"], qrels["train"], part["valid"], qrels["valid"])
    print(
        f"data: {items.height} items, {queries.height} queries ({time.perf_counter() - t0:.0f} s)"
    )

    ctx = ModelContext(cache_dir=root / ".cache" / "shelflab", show_progress=False)
    threshold = params["evaluate"]["relevance_threshold"]
    results, per_query = {}, {}
    for name, spec in specs.items():
        model = create(name, spec, ctx)
        t = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            model.build_index(items, Path(tmp))
            index_s = time.perf_counter() - t
            run = model.retrieve(part["test"], 100)
            latency = query_latency(model, part["test"], 100, 100)
            model.close()
        res = evaluate(qrels["test"], run, ["ndcg@10", "recall@100", "mrr"], threshold)
        if args.runs_dir:
            Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
            run.write_parquet(Path(args.runs_dir) / f"{name}.test.parquet")
        per_query[name] = res.per_query
        table = summarize(res.per_query, ["ndcg@10"], n_resamples=1000, seed=0).row(0, named=True)
        results[name] = {
            **{m: res.means[m] for m in ("ndcg@10", "recall@100", "mrr")},
            "ndcg@10_ci": [table["ci_low"], table["ci_high"]],
            "fit_s": fit_s,
            "index_s": index_s,
            **{f"latency_{k}": v for k, v in latency.items() if k != "queries"},
            **headroom(qrels["test"], run, threshold),
            "train_info": getattr(model, "history", None) or getattr(model, "train_info", None),
        }
        print(name, json.dumps(results[name], default=str), flush=True)
    if "bm25" in per_query:
        for name in per_query:
            if name != "bm25":
                test = paired_test(per_query[name], per_query["bm25"], metric="ndcg@10")
                results[name]["vs_bm25"] = repr(test)
                print(f"{name} vs bm25: {test!r}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
