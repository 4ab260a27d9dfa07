from __future__ import annotations

import numpy as np

from shelflab.models.embedding_cache import EmbeddingCache


class CountingEncoder:
    """A deterministic stand-in encoder: hashes text into a unit vector, counts texts."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        out = np.stack(
            [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8) for t in texts]
        ).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_hits_partial_changes_and_duplicates(tmp_path):
    enc = CountingEncoder()
    cache = EmbeddingCache(tmp_path, "k" * 64, 8)
    texts = ["drill", "saw", "drill", "hammer"]
    first = cache.embed(texts, enc)
    assert enc.seen == ["drill", "saw", "hammer"]  # each distinct text once
    assert cache.last == {"requested": 4, "cached": 0, "embedded": 3}
    np.testing.assert_array_equal(first[0], first[2])

    again = EmbeddingCache(tmp_path, "k" * 64, 8).embed(texts, enc)
    assert len(enc.seen) == 3
    np.testing.assert_array_equal(first, again)

    cache.embed(["saw", "level", "drill"], enc)
    assert enc.seen[3:] == ["level"]
    assert cache.last == {"requested": 3, "cached": 2, "embedded": 1}

    # another model key shares nothing
    EmbeddingCache(tmp_path, "m" * 64, 8).embed(["saw"], enc)
    assert enc.seen[-1] == "saw"
    # only complete shards, no temp files left behind
    shard_dir = tmp_path / "embeddings" / ("k" * 32)
    names = sorted(p.name for p in shard_dir.iterdir())
    assert not [n for n in names if n.startswith(".")]
    assert len([n for n in names if n.endswith(".keys.npy")]) == 2
