"""Embedding throughput (texts/s) of the packaged all-MiniLM-L6-v2 on product titles, per
runtime (torch, ONNX Runtime) side by side in one run, with the cosine of each runtime's
embeddings to torch's.

HF_HUB_OFFLINE=1 python bench/bench_embed.py --limit 4000 --batch-sizes 16 64 256
python bench/bench_embed.py --limit 54667 --batch-sizes 64 --backends torch onnx --repeats 2
python bench/bench_embed.py --limit 6000 --batch-sizes 64 --backends torch onnx-int8 --repeats 2

Backends: torch (fp32, sentence-transformers), onnx (fp32 ONNX Runtime), onnx-int8 (the int8
per-channel graph: what `dense` uses on the CPU by default, `precision: auto`).
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
from shelflab.models.onnx_encoder import load_onnx_encoder

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
    ap.add_argument(
        "--backends", nargs="+", default=["torch"], choices=["torch", "onnx", "onnx-int8"]
    )
    args = ap.parse_args()

    import torch

    with gzip.open(args.data / "products.csv.gz") as f:
        raw = f.read().decode("latin-1")
    titles = pl.read_csv(io.StringIO(raw))["product_title"].head(args.limit).to_list()
    device = resolve_device(args.device)
    path = str(resolve_model_path(args.model))
    models = {}
    for backend in args.backends:
        t0 = time.perf_counter()
        if backend == "torch":
            models[backend] = load_encoder(path, device)
        else:
            precision = "int8" if backend == "onnx-int8" else "fp32"
            models[backend] = load_onnx_encoder(path, precision=precision)
        encode(models[backend], titles[:64], 32)  # warm-up
        print(f"{backend}: load {time.perf_counter() - t0:.1f}s")
    print(
        f"device {device}  torch threads {torch.get_num_threads()}  texts {len(titles):,} "
        f"(mean {sum(map(len, titles)) / len(titles):.0f} chars)"
    )
    print(f"{'backend':>10}{'batch_size':>11}{'seconds':>10}{'texts/s':>10}{'x torch':>9}"
          f"{'min cos':>10}")  # fmt: skip
    for bs in args.batch_sizes:
        best = {b: float("inf") for b in models}
        vectors = {}
        for _ in range(args.repeats):  # backends alternate: the same load for each
            for backend, model in models.items():
                t0 = time.perf_counter()
                vectors[backend] = encode(model, titles, bs)
                best[backend] = min(best[backend], time.perf_counter() - t0)
        base = best.get("torch")
        for backend in models:
            ratio = f"{base / best[backend]:.2f}" if base else "-"
            cos = (
                f"{(vectors[backend] * vectors['torch']).sum(axis=1).min():.7f}"
                if "torch" in vectors
                else "-"
            )
            print(
                f"{backend:>10}{bs:>11}{best[backend]:>10.1f}"
                f"{len(titles) / best[backend]:>10,.0f}{ratio:>9}{cos:>10}"
            )


if __name__ == "__main__":
    main()
