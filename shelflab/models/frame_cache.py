"""On-disk cache of derived training frames (xgb_ltr's labelled candidate features), so that
the tune@ and train@ stages of one repro build them once (minutes on the full catalog).

An entry is keyed by the settings that shape the frames, the data (row hashes and shapes of
every input frame) and the code (a digest of the model package's source and the polars
version): a change to any of them misses. Entries are written atomically; the newest KEEP per
kind are kept.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
from pathlib import Path

import polars as pl

from shelflab.atomic import atomic_path

KEEP = 3


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the source that computes model frames: shelflab/models and the ground modules
    it reads (contract, text normalisation)."""
    root = Path(__file__).resolve().parents[1]
    files = [*sorted((root / "models").rglob("*.py")), root / "contract.py", root / "textnorm.py"]
    h = hashlib.sha256(pl.__version__.encode())
    for file in files:
        h.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


def data_digest(*frames: pl.DataFrame | None) -> str:
    """Digest of frames' schemas, shapes and row hashes (None counts as absent)."""
    h = hashlib.sha256()
    for frame in frames:
        if frame is None:
            h.update(b"none")
            continue
        h.update(repr(frame.schema).encode() + repr(frame.shape).encode())
        h.update(str(frame.hash_rows(seed=7).sum()).encode())
    return h.hexdigest()


class FrameCache:
    """Named frames of one key under `<cache_dir>/<kind>/<digest>/`."""

    def __init__(self, cache_dir: str | Path, kind: str, key: str) -> None:
        self.root = Path(cache_dir) / kind
        self.dir = self.root / hashlib.sha256((key + code_digest()).encode()).hexdigest()[:32]

    def load(self, names: list[str]) -> dict[str, pl.DataFrame | None] | None:
        """The frames saved under `names` (None for one saved as absent), or None on a miss."""
        if not (self.dir / "complete").is_file():
            return None
        out: dict[str, pl.DataFrame | None] = {}
        for name in names:
            file = self.dir / f"{name}.parquet"
            out[name] = pl.read_parquet(file) if file.is_file() else None
        self.dir.touch()  # recently used: kept by the pruning below
        return out

    def save(self, frames: dict[str, pl.DataFrame | None]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            if frame is not None:
                with atomic_path(self.dir / f"{name}.parquet", ".parquet") as tmp:
                    frame.write_parquet(tmp)
        (self.dir / "complete").write_text("")
        self._prune()

    def _prune(self) -> None:
        entries = sorted(
            (d for d in self.root.iterdir() if d.is_dir()),
            key=lambda d: d.stat().st_mtime,
            reverse=True,
        )
        for old in entries[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
