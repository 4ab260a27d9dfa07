"""`dense`: sentence-transformers bi-encoder; exact (matmul) or ChromaDB HNSW search.

index_dir layout: `embeddings.npy` (float32, n x dim, L2-normalised; row i = item i),
`item_ids.parquet`, `shelflab-index.json` (params, model fingerprint, dim, Chroma config) and,
when param `chroma` is true, `chroma/` (a chromadb PersistentClient directory), or with
`chroma_url` a collection on that Chroma server (its name kept in the index metadata). Exact
search is therefore always possible; `search: chroma` needs an index built with `chroma: true`.
Item embeddings go through the embedding cache in `ctx.cache_dir`; query embeddings are
computed at retrieve time. Scores are cosine similarities.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from shelflab.atomic import atomic_path, write_json, write_parquet
from shelflab.contract import ITEM_ID, QUERY_ID, SCORE, TEXT, add_rank, require_columns
from shelflab.errors import ConfigError, InputError
from shelflab.models.base import (
    INDEX_FILE,
    RUN_COLUMNS,
    Retriever,
    check_items,
    empty_run,
    read_index_meta,
)
from shelflab.models.params import Param
from shelflab.timing import DEVICES

if TYPE_CHECKING:
    import numpy as np

EXACT_QUERY_BATCH = 512


@functools.lru_cache(maxsize=8)
def _fingerprint(path: str, extra: str) -> str:
    from shelflab.models.encoders import model_fingerprint

    return model_fingerprint(Path(path), extra)


class DenseRetriever(Retriever):
    family: ClassVar[str] = "dense"
    PARAMS: ClassVar[dict[str, Param]] = {
        "model": Param(
            "str",
            "all-MiniLM-L6-v2",
            help="local directory, alias, or package with get_model_path()",
        ),
        "batch_size": Param("int", 64, min=1),
        "device": Param("str", "auto", help="auto | cpu | cuda | cuda:N | mps"),
        "max_seq_length": Param("int", None, min=1, nullable=True),
        "backend": Param(
            "str",
            "auto",
            choices=("auto", "torch", "onnx"),
            help="inference runtime; auto: ONNX Runtime on CPU (same embeddings, faster), "
            "torch on a GPU",
        ),
        "precision": Param(
            "str",
            "auto",
            choices=("auto", "fp32", "int8"),
            help="int8: dynamically quantised ONNX (CPU; 1.5x fp32 ONNX, ndcg@10 within "
            "0.002); auto: the open index's precision, else int8 on ONNX Runtime, fp32 on torch",
        ),
        "query_prefix": Param("str", ""),
        "item_prefix": Param("str", ""),
        "search": Param("str", "exact", choices=("exact", "chroma")),
        "chroma": Param("bool", True, help="also build a Chroma HNSW collection"),
        "chroma_url": Param(
            "str", "", help="a Chroma server (http://host:port) instead of an embedded directory"
        ),
        "ef_construction": Param("int", 200, min=1),
        "ef_search": Param("int", 200, min=1),
        "M": Param("int", 32, min=2, help="HNSW max_neighbors"),
        "cache": Param("bool", True, help="cache item embeddings in ctx.cache_dir"),
    }

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self._encoder: Any = None
        self._device: str | None = None
        self._emb: np.ndarray | None = None
        self._emb_t: Any = None
        self._ids: np.ndarray | None = None
        self._chroma: Any = None
        self._index_dir: Path | None = None
        self._meta: dict[str, Any] = {}
        self._query_memo: dict[str, np.ndarray] | None = None
        self._index_precision: str | None = None  # recorded by the open index
        self.index_stats: dict[str, int] = {}

    # --- encoder ------------------------------------------------------------------
    @property
    def model_path(self) -> Path:
        from shelflab.models.encoders import resolve_model_path

        return resolve_model_path(self.params["model"])

    @property
    def model_key(self) -> str:
        extra = f"max_seq_length={self.params['max_seq_length']}"
        if self.precision != "fp32":  # fp32 keys predate the param: their caches stay valid
            extra += f";precision={self.precision}"
        return _fingerprint(str(self.model_path), extra)

    @property
    def device(self) -> str:
        if self._device is None:
            from shelflab.models.device import resolve_device

            self._device = resolve_device(self.params["device"], self.ctx.device)
        return self._device

    @property
    def backend(self) -> str:
        """torch or onnx (`backend` auto: ONNX Runtime when the model runs on the CPU and its
        modules run there, else torch)."""
        from shelflab.models.onnx_encoder import onnx_capable

        chosen = self.params["backend"]
        if chosen == "auto":
            return "onnx" if self.device == "cpu" and onnx_capable(self.model_path) else "torch"
        if chosen == "onnx" and self.device != "cpu":
            raise ConfigError(
                f"model {self.name!r}: backend onnx runs on the CPU, not {self.device}"
            )
        return chosen

    @property
    def precision(self) -> str:
        """fp32 or int8: the param, else the open index's, else int8 on ONNX Runtime."""
        chosen = self.params["precision"]
        if chosen == "auto":
            if self._index_precision is not None:
                chosen = self._index_precision
            else:
                chosen = "int8" if self.backend == "onnx" else "fp32"
        if chosen == "int8" and self.backend != "onnx":
            raise ConfigError(
                f"model {self.name!r}: precision int8 runs on ONNX Runtime (backend onnx, "
                f"CPU), not {self.backend} on {self.device}"
            )
        return chosen

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from shelflab.models.encoders import load_encoder
            from shelflab.models.onnx_encoder import load_onnx_encoder

            path, length = str(self.model_path), self.params["max_seq_length"]
            if self.backend == "onnx":
                self._encoder = load_onnx_encoder(path, length, self.precision)
                DEVICES["encoder"] = f"cpu (onnxruntime, {self.precision})"
            else:
                self._encoder = load_encoder(path, self.device, length)
        return self._encoder

    def _encode(self, texts: list[str], label: str = "encode queries") -> np.ndarray:
        from shelflab.models.encoders import encode

        return encode(self.encoder, texts, self.params["batch_size"], self.ctx.show_progress, label)

    def _encode_items(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, f"{self.name}: embed catalog")

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        texts = [self.params["query_prefix"] + t for t in texts]
        memo = self._query_memo
        if memo is None or not texts:
            return self._encode(texts)
        import numpy as np

        new = list(dict.fromkeys(t for t in texts if t not in memo))
        if new:
            memo.update(zip(new, self._encode(new), strict=True))
        return np.stack([memo[t] for t in texts])

    @contextlib.contextmanager
    def reusing_query_embeddings(self) -> Iterator[None]:
        """Inside the block each query text is encoded once however often it is asked for (a
        reranker's features ask for the same queries several times). Nothing outlives the
        block, so a query timed on its own still pays for its encoding."""
        outer = self._query_memo
        self._query_memo = {} if outer is None else outer
        try:
            yield
        finally:
            self._query_memo = outer

    def embed_items(self, texts: list[str]) -> np.ndarray:
        """Item embeddings through the on-disk cache (unless param cache is false)."""
        from shelflab.models.embedding_cache import EmbeddingCache
        from shelflab.models.encoders import embedding_dim

        texts = [self.params["item_prefix"] + t for t in texts]
        if not self.params["cache"]:
            self.index_stats = {"requested": len(texts), "cached": 0, "embedded": len(texts)}
            return self._encode_items(texts)
        cache = EmbeddingCache(
            self.ctx.cache_dir,
            self.model_key,
            lambda: embedding_dim(self.encoder),  # loads the model only on a cold cache
            info={"model": self.params["model"], "path": str(self.model_path)},
        )
        out = cache.embed(texts, self._encode_items)
        self.index_stats = dict(cache.last)
        return out

    # --- index@ -------------------------------------------------------------------
    def build_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        import numpy as np

        items = check_items(items)
        if items.height == 0:
            raise InputError("empty catalog", path="items", expected="at least one item")
        index_dir = Path(index_dir)
        emb = self.embed_items(items[TEXT].to_list())
        ids = items[ITEM_ID].to_list()
        with atomic_path(index_dir / "embeddings.npy", ".npy") as tmp, tmp.open("wb") as f:
            np.save(f, emb)
        write_parquet(items.select(ITEM_ID), index_dir / "item_ids.parquet")
        p = self.params
        hnsw = None
        if p["chroma"]:
            from shelflab.models.chroma_index import build_chroma, collection_name

            remote = collection_name(self.name, ids, emb) if p["chroma_url"] else ""
            hnsw = build_chroma(
                None if remote else index_dir / "chroma",
                ids,
                emb,
                ef_construction=p["ef_construction"],
                ef_search=p["ef_search"],
                max_neighbors=p["M"],
                show_progress=self.ctx.show_progress,
                url=p["chroma_url"],
                name=remote,
            )
        self._meta = {
            "family": self.family,
            "name": self.name,
            "params": p,
            "model_key": self.model_key,
            "model_path": str(self.model_path),
            "precision": self.precision,
            "n_items": len(ids),
            "dim": int(emb.shape[1]),
            "chroma": hnsw is not None,
            "chroma_collection": remote if p["chroma"] else None,  # server mode only
            "hnsw": hnsw,
            "embedding_stats": self.index_stats,
        }
        write_json(self._meta, index_dir / INDEX_FILE)
        self._set_index(index_dir, emb, np.asarray(ids, dtype=object))

    def open_index(self, index_dir: Path) -> None:
        import numpy as np

        index_dir = Path(index_dir)
        meta = read_index_meta(index_dir, self.family)
        # queries are encoded as the items were (an index without the field predates int8)
        precision = meta.get("precision", "fp32")
        if precision != self._index_precision:
            self._encoder = None
        self._index_precision = precision
        if meta.get("model_key") != self.model_key:
            raise ConfigError(
                f"model {self.name!r}: index at {index_dir} was built with another "
                f"encoder ({meta.get('model_path')}, {precision}); rebuild the index"
            )
        if meta.get("params", {}).get("item_prefix", "") != self.params["item_prefix"]:
            raise ConfigError(
                f"model {self.name!r}: index at {index_dir} was built with another "
                "item_prefix; rebuild the index"
            )
        if self.params["search"] == "chroma" and not meta.get("chroma"):
            raise ConfigError(
                f"model {self.name!r}: search 'chroma' but the index at {index_dir} "
                "was built with chroma: false"
            )
        self._meta = meta
        emb = np.load(index_dir / "embeddings.npy")
        ids = pl.read_parquet(index_dir / "item_ids.parquet")[ITEM_ID].to_numpy()
        self._set_index(index_dir, emb, ids)

    def _set_index(self, index_dir: Path, emb: np.ndarray, ids: np.ndarray) -> None:
        self.close()
        self._index_dir, self._emb, self._ids, self._emb_t = index_dir, emb, ids, None

    def close(self) -> None:
        """Release the Chroma client (if one was opened)."""
        if self._chroma is not None:
            self._chroma.close()
            self._chroma = None

    # --- search -------------------------------------------------------------------
    def _require_index(self) -> None:
        if self._emb is None or self._ids is None:
            raise ConfigError(f"model {self.name!r}: call build_index or open_index first")

    def search_exact(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force cosine top-k: (row indices, scores), each (n_queries, min(k, n_items))."""
        import numpy as np
        import torch

        self._require_index()
        assert self._emb is not None
        if self._emb_t is None:
            self._emb_t = torch.from_numpy(self._emb).to(self.device)
        k = min(k, self._emb.shape[0])
        idx, val = [], []
        with torch.inference_mode():
            for start in range(0, len(q), EXACT_QUERY_BATCH):
                qt = torch.from_numpy(np.ascontiguousarray(q[start : start + EXACT_QUERY_BATCH]))
                sims = qt.to(self.device) @ self._emb_t.T
                top = torch.topk(sims, k, dim=1, largest=True, sorted=True)
                idx.append(top.indices.cpu().numpy())
                val.append(top.values.float().cpu().numpy())
        if not idx:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return np.concatenate(idx), np.concatenate(val)

    def search_chroma(self, q: np.ndarray, k: int) -> tuple[list[list[str]], list[np.ndarray]]:
        self._require_index()
        if not self._meta.get("chroma"):
            raise ConfigError(f"model {self.name!r}: this index has no Chroma collection")
        if self._chroma is None:
            from shelflab.models.chroma_index import ChromaIndex

            assert self._index_dir is not None
            remote = self._meta.get("chroma_collection")
            if remote:  # built on a server: the index's url unless this model names another
                url = self.params["chroma_url"] or self._meta["params"].get("chroma_url", "")
                self._chroma = ChromaIndex(None, url=url, name=remote)
            else:
                self._chroma = ChromaIndex(self._index_dir / "chroma")
        return self._chroma.search(q, k)

    def diagnostics(self, queries: pl.DataFrame, k: int) -> dict[str, float]:
        """Chroma HNSW vs exact search on these queries: recall@k and QPS of both."""
        if not self._meta.get("chroma"):
            return {}
        from shelflab.models.ann_recall import chroma_recall_vs_exact

        got = chroma_recall_vs_exact(self, queries, k)
        return {
            f"chroma_recall_at_{k}": got["recall"],
            "chroma_qps": got["chroma_qps"],
            "exact_qps": got["exact_qps"],
        }

    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        import numpy as np

        self._require_index()
        assert self._ids is not None
        require_columns(queries, [QUERY_ID, TEXT], "queries")
        if k < 1 or queries.height == 0:
            return empty_run()
        qids = queries[QUERY_ID].cast(pl.String).to_list()
        q = self.embed_queries(queries[TEXT].cast(pl.String).fill_null("").to_list())
        if self.params["search"] == "chroma":
            ids, scores = self.search_chroma(q, k)
            qcol = [qid for qid, row in zip(qids, ids, strict=True) for _ in row]
            icol = [i for row in ids for i in row]
            scol = np.concatenate(scores) if scores else np.zeros(0)
        else:
            idx, val = self.search_exact(q, k)
            qcol = np.repeat(np.asarray(qids, dtype=object), idx.shape[1]).tolist()
            icol = self._ids[idx.ravel()].tolist()
            scol = val.ravel().astype(np.float64)
        run = pl.DataFrame(
            {
                QUERY_ID: pl.Series(qcol, dtype=pl.String),
                ITEM_ID: pl.Series(icol, dtype=pl.String),
                SCORE: pl.Series(scol, dtype=pl.Float64),
            }
        )
        return add_rank(run).select(RUN_COLUMNS) if run.height else empty_run()
