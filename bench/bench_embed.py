"""Embedding throughput (texts/s) of the packaged all-MiniLM-L6-v2 on product titles.

HF_HUB_OFFLINE=1 python bench/bench_embed.py --limit 4000 --batch-sizes 16 64 256
"""

from __future__ import annotations

import argparse
import gzip
import io
import time
from pathlib import Path

import polars as pl

from shelflab.config import default_data_dir, quiet_environment
from shelflab.models.device import resolve_device
from shelflab.models.encoders import encode, load_encoder, resolve_model_path

quiet_environment()
DATA = default_data_dir() / "home-depot-search-relevance"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=4000, help="number of titles to encode")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    import torch

    with gzip.open(args.data / "products.csv.gz") as f:
        raw = f.read().decode("latin-1")
    titles = pl.read_csv(io.StringIO(raw))["product_title"].head(args.limit).to_list()
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    model = load_encoder(str(resolve_model_path(args.model)), device)
    print(
        f"model load {time.perf_counter() - t0:.1f}s  device {device}  "
        f"torch threads {torch.get_num_threads()}  texts {len(titles):,} "
        f"(mean {sum(map(len, titles)) / len(titles):.0f} chars)"
    )
    encode(model, titles[:64], 32)  # warm-up
    print(f"{'batch_size':>10}{'seconds':>10}{'texts/s':>10}")
    for bs in args.batch_sizes:
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            encode(model, titles, bs)
            best = min(best, time.perf_counter() - t0)
        print(f"{bs:>10}{best:>10.1f}{len(titles) / best:>10,.0f}")


if __name__ == "__main__":
    main()
