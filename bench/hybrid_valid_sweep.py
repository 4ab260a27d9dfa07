"""Fusion settings for `hybrid`, chosen on the VALID split of a built pipeline (never test).

Opens the pipeline's `bm25` and `dense` models (as the last `dvc repro` built them), retrieves
the valid queries once at depth 200, then scores every fusion setting of a small grid on
valid ndcg@10 / recall@100. Run from the repo root after `dvc repro`:

    python bench/hybrid_valid_sweep.py [--split valid] [--depth 200]
"""

from __future__ import annotations

import argparse
import itertools

import polars as pl

from shelflab.config import find_root, load_params
from shelflab.evaluation.harness import evaluate
from shelflab.layout import Layout
from shelflab.models.fusion import fuse
from shelflab.pipeline.built import open_built_model, split_frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="valid")
    ap.add_argument("--depth", type=int, default=200)
    args = ap.parse_args()
    layout = Layout(find_root())
    params = load_params()
    splits = pl.read_parquet(layout.splits)
    queries = split_frame(
        pl.read_parquet(layout.enriched / "queries.parquet"), splits, args.split
    ).select("query_id", "text")
    qrels = split_frame(pl.read_parquet(layout.qrels), splits, args.split)
    threshold = params["evaluate"]["relevance_threshold"]
    runs = [open_built_model(layout, n).retrieve(queries, args.depth) for n in ("bm25", "dense")]
    metrics = ["ndcg@10", "recall@100", "mrr"]

    rows = []
    for name, run in zip(("bm25 alone", "dense alone"), runs, strict=True):
        rows.append((name, evaluate(qrels, run, metrics, threshold).means))
    for w, rrf_k in itertools.product([0.5, 0.6, 0.7, 0.8, 0.9], [10, 60]):
        fused = fuse(runs, "rrf", k=100, rrf_k=rrf_k, weights=[w, 1 - w], norm="minmax")
        rows.append((f"rrf k={rrf_k} w_bm25={w}", evaluate(qrels, fused, metrics, threshold).means))
    for w, norm in itertools.product([0.5, 0.6, 0.7, 0.8, 0.9], ["minmax", "zscore"]):
        fused = fuse(runs, "weighted", k=100, rrf_k=60, weights=[w, 1 - w], norm=norm)
        rows.append(
            (f"weighted {norm} w_bm25={w}", evaluate(qrels, fused, metrics, threshold).means)
        )
    print(f"{args.split} split, {queries.height} queries, depth {args.depth}")
    print(f"{'setting':<32}" + "".join(f"{m:>12}" for m in metrics))
    for name, means in sorted(rows, key=lambda r: -r[1]["ndcg@10"]):
        print(f"{name:<32}" + "".join(f"{means[m]:>12.4f}" for m in metrics))


if __name__ == "__main__":
    main()
