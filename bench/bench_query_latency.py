"""Single-query latency of two built models of a full-data checkout, interleaved query by query
in one process (so both see the same machine state): the p50/p95 of each and their ratio. The
default pair is xgb_ltr against its own first stage, the hybrid (issue 16's bar: xgb_ltr
<= 30 ms p50 and <= 1.5 x the hybrid).

    python bench/bench_query_latency.py --pipeline /path/to/a/full-data/checkout
    python bench/bench_query_latency.py --pipeline ... --models bm25 hybrid --queries 200

`--pipeline`: a checkout where `bash scripts/run.sh --full` ran. The models are opened from its
artifacts with the code of the Python environment running this script, so the same artifacts
can be timed with two versions of the code (run it once from each checkout's venv).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import polars as pl

from shelflab.config import quiet_environment
from shelflab.layout import Layout
from shelflab.pipeline.built import open_built_model

quiet_environment()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", type=Path, required=True)
    parser.add_argument("--models", nargs=2, default=["hybrid", "xgb_ltr"])
    parser.add_argument("--queries", type=int, default=100, help="test queries, in order")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the queries")
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    root = args.pipeline.resolve()
    os.chdir(root)  # paths in the built models' params are relative to the checkout
    layout = Layout(root)
    models = [open_built_model(layout, name, show_progress=False) for name in args.models]
    test = pl.read_parquet(layout.splits).filter(pl.col("split") == "test").select("query_id")
    queries = (
        pl.read_parquet(layout.enriched / "queries.parquet")
        .join(test, on="query_id")
        .select("query_id", "text")
        .head(args.queries)
    )
    for model in models:  # warm-up: lazy loads, caches of the first call
        model.retrieve(queries.head(1), args.k)
    times: list[list[float]] = [[] for _ in models]
    for _ in range(args.rounds):
        for i in range(queries.height):
            one = queries.slice(i, 1)
            for model, spent in zip(models, times, strict=True):
                start = time.perf_counter()
                model.retrieve(one, args.k)
                spent.append(1000 * (time.perf_counter() - start))
    print(f"{queries.height} test queries x {args.rounds} rounds, one at a time, interleaved "
          f"({os.cpu_count()} cores)")  # fmt: skip
    p50 = []
    for name, spent in zip(args.models, times, strict=True):
        p50.append(float(np.percentile(spent, 50)))
        print(f"{name:16s} p50 {p50[-1]:6.1f} ms  p95 {np.percentile(spent, 95):6.1f} ms")
    print(f"ratio of p50s ({args.models[1]} / {args.models[0]}): {p50[1] / p50[0]:.2f}")


if __name__ == "__main__":
    main()
