"""A persistent ChromaDB HNSW collection over our own (normalised) embeddings.

Chroma never embeds anything here: collections are created and opened with
`embedding_function=None` (Chroma's default embedding function would try to download an ONNX
model), and every add/query passes embeddings explicitly. HNSW settings go through the
chromadb >= 1.0 `configuration={"hnsw": {...}}` API (the legacy "hnsw:*" metadata keys are
only translated for old collections); space is "cosine", so score = 1 - distance.

Quirk: merely opening a PersistentClient writes to its chroma.sqlite3 (a row in the
`acquire_write` table), which would change a DVC-tracked index directory on every evaluate.
`ChromaIndex` therefore opens a private temporary copy of the directory (removed on close or
at exit), leaving the built index byte-identical.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Any

import numpy as np

COLLECTION = "items"
QUERY_BATCH = 256


def _client(path: Path) -> Any:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


def build_chroma(
    path: Path,
    ids: list[str],
    embeddings: np.ndarray,
    *,
    ef_construction: int = 200,
    ef_search: int = 100,
    max_neighbors: int = 16,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Create the collection at `path` (a fresh directory) and add all vectors in batches no
    larger than the client's max batch size. Returns the stored HNSW configuration."""
    from tqdm.auto import tqdm

    client = _client(path)
    try:
        col = client.create_collection(
            COLLECTION,
            configuration={
                "hnsw": {
                    "space": "cosine",
                    "ef_construction": ef_construction,
                    "ef_search": ef_search,
                    "max_neighbors": max_neighbors,
                }
            },
            embedding_function=None,
        )
        step = max(1, min(client.get_max_batch_size(), 5000))
        for start in tqdm(range(0, len(ids), step), disable=not show_progress, desc="chroma add"):
            col.add(ids=ids[start : start + step], embeddings=embeddings[start : start + step])
        count = col.count()
        if count != len(ids):  # pragma: no cover - would be a Chroma bug
            raise RuntimeError(f"chroma holds {count} vectors, expected {len(ids)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see _get_collection
            return dict(col.configuration.get("hnsw") or {})
    finally:
        client.close()


def _get_collection(client: Any) -> Any:
    # a collection created with embedding_function=None stores {"type": "legacy"} as its
    # embedding-function config, and reading it back warns "legacy embedding function config"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return client.get_collection(COLLECTION, embedding_function=None)


class ChromaIndex:
    """Read side: top-k by cosine similarity for a batch of query embeddings."""

    def __init__(self, path: Path, copy: bool = True) -> None:
        self.path = Path(path)
        if not (self.path / "chroma.sqlite3").exists():
            raise FileNotFoundError(f"no Chroma database at {self.path}")
        self._tmp: Path | None = None
        if copy:
            self._tmp = Path(tempfile.mkdtemp(prefix="shelflab-chroma-"))
            weakref.finalize(self, shutil.rmtree, self._tmp, True)
            path = self._tmp / "chroma"
            shutil.copytree(self.path, path)
        self.client = _client(path)
        self.collection = _get_collection(self.client)
        self.count = self.collection.count()

    def search(self, queries: np.ndarray, k: int) -> tuple[list[list[str]], list[np.ndarray]]:
        """-> (ids per query, cosine similarities per query), best first."""
        k = min(k, self.count)
        ids: list[list[str]] = []
        scores: list[np.ndarray] = []
        if k < 1:
            return [[] for _ in range(len(queries))], [np.zeros(0) for _ in range(len(queries))]
        for start in range(0, len(queries), QUERY_BATCH):
            res = self.collection.query(
                query_embeddings=queries[start : start + QUERY_BATCH],
                n_results=k,
                include=["distances"],
            )
            ids.extend(res["ids"])
            scores.extend(1.0 - np.asarray(d, dtype=np.float64) for d in res["distances"])
        return ids, scores

    def set_ef_search(self, ef_search: int) -> None:
        """Change ef_search on this private copy, e.g. for a recall/QPS sweep. Quirk: an
        open client keeps the HNSW index it loaded, so the change only applies after the
        client is closed and reopened, which this does."""
        if self._tmp is None:
            raise RuntimeError("refusing to modify the built index in place; open with copy=True")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.collection.modify(configuration={"hnsw": {"ef_search": ef_search}})
        self.client.close()
        self.client = _client(self._tmp / "chroma")
        self.collection = _get_collection(self.client)

    def close(self) -> None:
        self.client.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
