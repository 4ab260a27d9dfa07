"""A persistent ChromaDB HNSW collection over our own (normalised) embeddings.

Chroma never embeds anything here: collections are created and opened with
`embedding_function=None` (Chroma's default embedding function would try to download an ONNX
model), and every add/query passes embeddings explicitly. HNSW settings go through the
chromadb >= 1.0 `configuration={"hnsw": {...}}` API (the legacy "hnsw:*" metadata keys are
only translated for old collections); space is "cosine", so score = 1 - distance.

Client/server mode: with a `url` (e.g. http://127.0.0.1:8000, a `chroma run --path DIR --port P`
server) the collection is created on that server under a name derived from the index's content
(`collection_name`), and searched through chromadb's HttpClient; the index directory then holds
only the embeddings and the collection's name.

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


def _http_client(url: str) -> Any:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from urllib.parse import urlparse

    import chromadb
    from chromadb.config import Settings

    from shelflab.errors import ConfigError
    from shelflab.servers import check_reachable

    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ConfigError(f"chroma_url must look like http://host:port, got {url!r}")
    check_reachable(url, "Chroma server")  # one line within the timeout, not a hang
    return chromadb.HttpClient(
        host=u.hostname,
        port=u.port or (443 if u.scheme == "https" else 8000),
        ssl=u.scheme == "https",
        settings=Settings(anonymized_telemetry=False),
    )


def collection_name(prefix: str, ids: list[str], embeddings: np.ndarray) -> str:
    """A server-side name that changes whenever the indexed vectors change."""
    import hashlib

    h = hashlib.sha256("\n".join(ids).encode())
    h.update(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes())
    safe = "".join(c if c.isalnum() else "-" for c in prefix)[:40].strip("-") or "items"
    return f"{safe}-{h.hexdigest()[:16]}"


def build_chroma(
    path: Path | None,
    ids: list[str],
    embeddings: np.ndarray,
    *,
    ef_construction: int = 200,
    ef_search: int = 100,
    max_neighbors: int = 16,
    show_progress: bool = False,
    url: str = "",
    name: str = COLLECTION,
) -> dict[str, Any]:
    """Create the collection at `path` (a fresh directory), or named `name` on the server at
    `url` (replacing one of that name), and add all vectors in batches no larger than the
    client's max batch size. Returns the stored HNSW configuration."""
    from shelflab.timing import Progress, batches

    client = _http_client(url) if url else _client(path)
    try:
        if url and name in [c.name for c in client.list_collections()]:
            client.delete_collection(name)  # same name = same vectors: rebuilt, not mixed
        col = client.create_collection(
            name if url else COLLECTION,
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
        with Progress("chroma add", len(ids), "vectors", enabled=show_progress) as progress:
            for start, stop in batches(len(ids), step):
                col.add(ids=ids[start:stop], embeddings=embeddings[start:stop])
                progress.update(stop - start)
        count = col.count()
        if count != len(ids):  # pragma: no cover - would be a Chroma bug
            raise RuntimeError(f"chroma holds {count} vectors, expected {len(ids)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see _get_collection
            return dict(col.configuration.get("hnsw") or {})
    finally:
        _close(client)


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        close()


def _get_collection(client: Any, name: str = COLLECTION) -> Any:
    # a collection created with embedding_function=None stores {"type": "legacy"} as its
    # embedding-function config, and reading it back warns "legacy embedding function config"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return client.get_collection(name, embedding_function=None)


class ChromaIndex:
    """Read side: top-k by cosine similarity for a batch of query embeddings."""

    def __init__(self, path: Path | None, copy: bool = True, url: str = "", name: str = "") -> None:
        self._tmp: Path | None = None
        if url:  # client/server: nothing local to protect
            self.path = None
            self.client = _http_client(url)
            try:
                self.collection = _get_collection(self.client, name)
            except Exception as err:
                raise FileNotFoundError(
                    f"no Chroma collection {name!r} on the server at {url}: {err}"
                ) from None
            self.count = self.collection.count()
            return
        self.path = Path(path)
        if not (self.path / "chroma.sqlite3").exists():
            raise FileNotFoundError(f"no Chroma database at {self.path}")
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
        _close(self.client)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
