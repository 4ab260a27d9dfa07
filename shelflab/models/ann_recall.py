"""How much a dense model's approximate (Chroma HNSW) search finds of its exact search, and at
what speed: the `diagnostics` of dense models and the ef sweep of bench/bench_dense.py."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import polars as pl

from shelflab.contract import TEXT

if TYPE_CHECKING:
    import numpy as np

    from shelflab.models.dense import DenseRetriever


def recall_at_k(approx: list[list[str]], exact: list[list[str]]) -> float:
    """Mean over queries of |approx ∩ exact| / |exact|."""
    import numpy as np

    vals = [len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True) if e]
    return float(np.mean(vals)) if vals else 0.0


def chroma_recall_vs_exact(
    model: DenseRetriever, queries: pl.DataFrame | list[str] | np.ndarray, k: int = 100
) -> dict[str, Any]:
    """Recall@k of the model's Chroma HNSW top-k against its exact top-k for the same query
    embeddings, plus wall time and QPS of both searches (query encoding excluded).

    `queries`: a queries frame (`text`), a list of texts, or precomputed query embeddings.
    The HNSW settings reported are those the collection was built with."""
    import numpy as np

    if isinstance(queries, np.ndarray):
        q = queries
    else:
        texts = queries if isinstance(queries, list) else queries[TEXT].cast(pl.String).to_list()
        q = model.embed_queries(texts)
    assert model._ids is not None
    model.search_exact(q[:1], k)  # warm-up: device copy of the matrix, Chroma client
    model.search_chroma(q[:1], k)
    t0 = time.perf_counter()
    idx, _ = model.search_exact(q, k)
    t1 = time.perf_counter()
    approx, _ = model.search_chroma(q, k)
    t2 = time.perf_counter()
    exact = [model._ids[row].tolist() for row in idx]
    n = len(q)
    return {
        "k": k,
        "n_queries": n,
        "recall": recall_at_k(approx, exact),
        "exact_s": t1 - t0,
        "chroma_s": t2 - t1,
        "exact_qps": n / (t1 - t0) if t1 > t0 else float("inf"),
        "chroma_qps": n / (t2 - t1) if t2 > t1 else float("inf"),
        "hnsw": model._meta.get("hnsw"),
    }
