"""Dense retrieval: Chroma HNSW vs exact (brute-force) search on the Home Depot catalog.

Builds a `dense` index over product titles (item embeddings come from the embedding cache,
so only the first run pays for encoding), encodes real search terms, and prints recall@k of
Chroma against exact top-k plus search QPS (query encoding excluded) for a sweep of
ef_search values.

    HF_HUB_OFFLINE=1 python bench/bench_dense.py                   # 54,667 items, 2,000 queries
    HF_HUB_OFFLINE=1 python bench/bench_dense.py --limit-items 5000 --limit-queries 500
"""

from __future__ import annotations

import argparse
import gzip
import io
import tempfile
import time
from pathlib import Path

import polars as pl

from shelflab.config import default_data_dir, quiet_environment
from shelflab.models import ModelContext, create
from shelflab.models.ann_recall import chroma_recall_vs_exact

quiet_environment()
DATA = default_data_dir() / "home-depot-search-relevance"


def read_latin1_csv(path: Path) -> pl.DataFrame:
    with gzip.open(path) as f:
        raw = f.read().decode("latin-1")
    return pl.read_csv(io.StringIO(raw), schema_overrides={"product_uid": pl.String})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit-items", type=int, default=None, help="first N products")
    ap.add_argument("--limit-queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--M", type=int, default=32)
    ap.add_argument("--ef-search", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache/shelflab"))
    ap.add_argument("--index-dir", type=Path, default=None, help="default: a temp dir")
    args = ap.parse_args()

    products = read_latin1_csv(args.data / "products.csv.gz")
    if args.limit_items:
        products = products.head(args.limit_items)
    items = products.select(
        pl.col("product_uid").alias("item_id"), pl.col("product_title").alias("text")
    )
    terms = (
        read_latin1_csv(args.data / "train.csv.gz")["search_term"]
        .unique()
        .sort()
        .sample(fraction=1.0, shuffle=True, seed=0)
    )
    queries = terms.head(args.limit_queries).to_list()

    ctx = ModelContext(cache_dir=args.cache_dir, show_progress=False)
    model = create(
        "dense",
        {
            "family": "dense",
            "model": args.model,
            "batch_size": args.batch_size,
            "M": args.M,
            "ef_construction": args.ef_construction,
            "ef_search": args.ef_search[0],
        },
        ctx,
    )
    tmp = tempfile.TemporaryDirectory(prefix="bench-dense-")
    index_dir = args.index_dir or Path(tmp.name) / "index"
    index_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    model.build_index(items, index_dir)
    build_s = time.perf_counter() - t0
    meta = model._meta
    print(f"items {items.height:,}  queries {len(queries):,}  k {args.k}  device {model.device}")
    print(
        f"index build {build_s:.1f}s (embedded {model.index_stats['embedded']:,} new texts, "
        f"{model.index_stats['cached']:,} from cache); hnsw {meta['hnsw']}"
    )
    size = sum(p.stat().st_size for p in (index_dir / "chroma").rglob("*") if p.is_file())
    print(
        f"chroma dir {size / 2**20:.0f} MiB, embeddings.npy "
        f"{(index_dir / 'embeddings.npy').stat().st_size / 2**20:.0f} MiB"
    )

    t0 = time.perf_counter()
    q = model.embed_queries(queries)
    enc_s = time.perf_counter() - t0
    print(f"query encoding {len(queries) / enc_s:,.0f} queries/s")

    print()
    print(f"{'search':<22}{'recall@' + str(args.k):>11}{'QPS':>10}{'QPS vs exact':>14}")
    rows = []
    for ef in args.ef_search:
        if rows:  # the collection was built with the first value
            model._chroma.set_ef_search(ef)
        rows.append((ef, chroma_recall_vs_exact(model, q, args.k)))
    exact_qps = max(r["exact_qps"] for _, r in rows)  # best of the repeated exact timings
    print(f"{'exact (torch matmul)':<22}{1.0:>11.4f}{exact_qps:>10,.0f}{1.0:>14.2f}")
    for ef, r in rows:
        label = f"chroma ef_search={ef}"
        qps = r["chroma_qps"]
        print(f"{label:<22}{r['recall']:>11.4f}{qps:>10,.0f}{qps / exact_qps:>14.2f}")
    model.close()
    tmp.cleanup()


if __name__ == "__main__":
    main()
