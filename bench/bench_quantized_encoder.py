"""int8 dynamic quantisation of the MiniLM encoder (ONNX Runtime) against fp32 ONNX, side by
side in one run: catalog titles/s, cosine to fp32 on a title sample, and dense exact-search
ndcg@10 / recall@100 on the valid and test splits of a full-data repro (the quality bar:
within 0.002 ndcg@10 of fp32).

    python bench/bench_quantized_encoder.py --pipeline /path/to/a/full-data/checkout

`--pipeline`: a checkout where `bash scripts/run.sh --full` ran (its data/enriched and
data/processed tables are read). The quantised graphs are written next to the fp32 graph's
cache (`$SHELFLAB_CACHE/onnx`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from shelflab.config import quiet_environment
from shelflab.evaluation.harness import evaluate
from shelflab.models.encoders import model_fingerprint, resolve_model_path
from shelflab.models.onnx_encoder import (
    OPSET,
    OnnxEncoder,
    cpu_threads,
    load_onnx_encoder,
    onnx_cache_dir,
    read_spec,
)

quiet_environment()
VARIANTS = {  # name -> onnxruntime.quantization.quantize_dynamic keyword arguments
    "int8 per-tensor": {"per_channel": False},
    "int8 per-channel": {"per_channel": True},
}


def encode_sorted(encoder, texts: list[str]) -> tuple[np.ndarray, float]:
    """Embeddings in input order, encoded shortest first (as dense does); and the seconds."""
    order = np.argsort([len(t) for t in texts])
    out = np.empty((len(texts), encoder.dim), np.float32)
    start = time.perf_counter()
    out[order] = encoder.encode([texts[i] for i in order], 64)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    args = ap.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = args.pipeline
    items = pl.read_parquet(root / "data/enriched/items.parquet")
    queries = pl.read_parquet(root / "data/enriched/queries.parquet")
    qrels = pl.read_parquet(root / "data/processed/qrels.parquet")
    splits = pl.read_parquet(root / "data/processed/splits.parquet")
    path = resolve_model_path(args.model)
    spec = read_spec(path)
    encoders = {"fp32": load_onnx_encoder(str(path))}
    fp32_file = onnx_cache_dir() / f"{model_fingerprint(path, f'onnx-opset{OPSET}')}.onnx"
    for name, kwargs in VARIANTS.items():
        out = fp32_file.with_suffix(f".{name.replace(' ', '-')}.onnx")
        if not out.is_file():
            quantize_dynamic(str(fp32_file), str(out), weight_type=QuantType.QInt8, **kwargs)
        encoders[name] = OnnxEncoder(spec, out, cpu_threads())

    texts, ids = items["text"].to_list(), items["item_id"].to_list()
    print(f"{'encoder':<18}{'titles/s':>9}{'x fp32':>8}{'mean cos':>10}{'min cos':>9}"
          f"{'valid ndcg@10':>15}{'test ndcg@10':>14}{'test recall@100':>17}")  # fmt: skip
    base = None
    for name, encoder in encoders.items():
        emb, seconds = encode_sorted(encoder, texts)
        rate = len(texts) / seconds
        if base is None:
            base = (emb, rate)
        cos = (emb * base[0]).sum(1)
        scores = {}
        for split in ("valid", "test"):
            q = queries.join(splits.filter(pl.col("split") == split), on="query_id", how="semi")
            sims = encoder.encode(q["text"].to_list(), 64) @ emb.T
            top = np.argsort(-sims, axis=1)[:, :100]
            run = pl.DataFrame(
                {
                    "query_id": np.repeat(q["query_id"].to_numpy(), 100),
                    "item_id": [ids[j] for j in top.ravel()],
                    "score": np.take_along_axis(sims, top, 1).ravel().astype(np.float64),
                }
            )
            judged = qrels.join(q.select("query_id"), on="query_id", how="semi")
            scores[split] = evaluate(judged, run, ["ndcg@10", "recall@100"]).means
        print(
            f"{name:<18}{rate:>9.0f}{rate / base[1]:>8.2f}{cos.mean():>10.4f}{cos.min():>9.4f}"
            f"{scores['valid']['ndcg@10']:>15.4f}{scores['test']['ndcg@10']:>14.4f}"
            f"{scores['test']['recall@100']:>17.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
