"""xgb_ltr text features, before and after, side by side in one run: the feature code as it
was when issue 16 was filed (hand-written Python Levenshtein, a pair at a time; read from git,
commit 605b214~1) against today's (`shelflab.models.features`: a query at a time, one
rapidfuzz cdist per query), on the same real (search term, product title) pairs. Prints pairs/s
of each, the ratio, and the largest difference between their feature values.

    python bench/bench_features.py [--queries 300] [--candidates 100] [--repeat 2]

Pairs: distinct Home Depot search terms, each with its judged products' titles topped up to
`--candidates` with titles drawn (seeded) from the whole catalog, as a reranker sees them.
Needs the git history (the old code is `git show 605b214~1:shelflab/models/features.py`).
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import polars as pl
from bench_metrics import timed  # bench/ is the script's folder: on sys.path

from shelflab.models import features
from shelflab.models.features import text_feature_frame

REPO = Path(__file__).resolve().parents[1]
DATA = (
    Path(os.environ.get("SHELFLAB_DATA_DIR", REPO.parent / "shared" / "data"))
    / "home-depot-search-relevance"
)
BEFORE = "605b214~1"  # the last commit with the hand-written Levenshtein


def old_features() -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:shelflab/models/features.py"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    module = types.ModuleType("features_before")
    sys.modules[module.__name__] = module  # dataclasses and annotations look the module up
    exec(compile(source, f"{BEFORE}:features.py", "exec"), module.__dict__)
    return module


def pairs(n_queries: int, n_candidates: int, seed: int = 0) -> pl.DataFrame:
    with gzip.open(DATA / "train.csv.gz", "rb") as fh:
        train = pl.read_csv(io.BytesIO(fh.read()), encoding="utf8-lossy")
    judged = train.group_by("search_term", maintain_order=True).agg("product_title").head(n_queries)
    titles = train["product_title"].unique().sort().to_list()
    rng = np.random.default_rng(seed)
    rows = []
    for qi, (term, own) in enumerate(judged.iter_rows()):
        extra = rng.choice(len(titles), n_candidates, replace=False)
        cands = list(dict.fromkeys([*own, *(titles[i] for i in extra)]))[:n_candidates]
        rows += [(f"q{qi}", f"i{qi}_{j}", term, t) for j, t in enumerate(cands)]
    return pl.DataFrame(
        rows, schema=["query_id", "item_id", "query_text", "item_text"], orient="row"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2, help="best of N timings")
    args = parser.parse_args()
    data = pairs(args.queries, args.candidates)
    before = old_features()
    print(f"{data.height:,} pairs ({data['query_id'].n_unique()} search terms), "
          f"{os.cpu_count()} cores, best of {args.repeat}")  # fmt: skip

    def after() -> pl.DataFrame:
        features._parts.cache_clear()  # each timing starts with no title split yet
        return text_feature_frame(data)

    t_new, new = timed(after, args.repeat)
    t_old, old = timed(lambda: before.text_feature_frame(data), args.repeat)
    names = [c for c in old.columns if c not in ("query_id", "item_id")]
    diff = max(float((new[c] - old[c]).abs().max()) for c in names)
    print(f"{'before (' + BEFORE + ')':28s} {t_old:8.2f} s  {data.height / t_old:10,.0f} pairs/s")
    print(f"{'after (shelflab now)':28s} {t_new:8.2f} s  {data.height / t_new:10,.0f} pairs/s"
          f"  = {t_old / t_new:.1f} x before")  # fmt: skip
    print(f"max |after - before| over {len(names)} features = {diff:.1e}")


if __name__ == "__main__":
    main()
