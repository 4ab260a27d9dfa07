"""On-disk cache of text embeddings, keyed by (model identity, sha256 of the text).

Layout: `<cache_dir>/embeddings/<model_key[:32]>/` holds shards, each a pair
`<id>.emb.npy` (float32, n x dim) + `<id>.keys.npy` (uint8, n x 32 sha256 digests), plus
`model.json` describing the model. A shard is written atomically (embeddings first, keys
last; a shard counts only once its keys file exists), so concurrent writers and crashes never
leave a half shard visible. Re-indexing an unchanged catalog embeds nothing; a partially
changed one embeds only the new texts and adds one shard.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shelflab.atomic import atomic_path, write_json


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    def __init__(
        self,
        cache_dir: str | Path,
        model_key: str,
        dim: int | Callable[[], int],
        info: dict[str, Any] | None = None,
    ) -> None:
        """`dim` may be a callable (e.g. one that loads the encoder): it is called only when
        the cache does not record the dimension yet, so a warm cache never loads the model."""
        self.dir = Path(cache_dir) / "embeddings" / model_key[:32]
        self.model_key = model_key
        self._dim = dim
        self.info = info or {}
        self.last: dict[str, int] = {"requested": 0, "cached": 0, "embedded": 0}

    @property
    def dim(self) -> int:
        if callable(self._dim):
            meta = self.dir / "model.json"
            recorded = json.loads(meta.read_text()).get("dim") if meta.exists() else None
            self._dim = int(recorded) if recorded else int(self._dim())
        return self._dim

    # --- shards ---------------------------------------------------------------
    def _shards(self) -> list[tuple[Path, Path]]:
        if not self.dir.is_dir():
            return []
        out = []
        for keys in sorted(self.dir.glob("*.keys.npy")):
            emb = keys.with_name(keys.name.replace(".keys.npy", ".emb.npy"))
            if emb.exists():
                out.append((keys, emb))
        return out

    def lookup(self, digests: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """-> (found mask, embeddings of the found digests in order)."""
        wanted = {d: i for i, d in enumerate(digests)}
        found = np.zeros(len(digests), dtype=bool)
        out = np.zeros((len(digests), self.dim), dtype=np.float32)
        for keys_path, emb_path in self._shards():
            keys = np.load(keys_path)
            rows, targets = [], []
            for row, key in enumerate(keys):
                i = wanted.get(key.tobytes())
                if i is not None and not found[i]:
                    rows.append(row)
                    targets.append(i)
            if not rows:
                continue
            emb = np.load(emb_path, mmap_mode="r")
            if emb.shape[1] != self.dim:
                continue
            out[targets] = emb[rows]
            found[targets] = True
            if found.all():
                break
        return found, out[found]

    def add(self, digests: list[bytes], embeddings: np.ndarray) -> None:
        if not digests:
            return
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        assert embeddings.shape == (len(digests), self.dim), embeddings.shape
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / "model.json").exists():
            write_json(
                {"model_key": self.model_key, "dim": self.dim, **self.info}, self.dir / "model.json"
            )
        stem = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        keys = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 32)
        with atomic_path(self.dir / f"{stem}.emb.npy", ".npy") as tmp, tmp.open("wb") as f:
            np.save(f, embeddings)
        with atomic_path(self.dir / f"{stem}.keys.npy", ".npy") as tmp, tmp.open("wb") as f:
            np.save(f, keys)

    # --- the one call models use ------------------------------------------------
    def embed(self, texts: list[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Embeddings for `texts` (row i = texts[i]); only texts not yet cached go through
        `encode` (each distinct text once), and their embeddings are added as a new shard."""
        digests = [text_digest(t) for t in texts]
        unique: dict[bytes, int] = {}
        for i, d in enumerate(digests):
            unique.setdefault(d, i)
        keys = list(unique)
        found, cached = self.lookup(keys)
        by_key = dict(zip([k for k, f in zip(keys, found, strict=True) if f], cached, strict=True))
        missing = [k for k, f in zip(keys, found, strict=True) if not f]
        if missing:
            new = encode([texts[unique[k]] for k in missing])
            self.add(missing, new)
            by_key.update(zip(missing, new, strict=True))
        self.last = {"requested": len(texts), "cached": int(found.sum()), "embedded": len(missing)}
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, d in enumerate(digests):
            out[i] = by_key[d]
        return out
