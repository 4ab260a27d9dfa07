"""Loading a sentence-transformers CrossEncoder (1 logit) from a local directory, quietly and
never downloading, and scoring (query text, item text) pairs with its raw logits."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shelflab.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

PREDICT_BATCH = 64
# texts joined onto candidate / pair frames (underscored: never clash with contract columns)
QUERY_TEXT, ITEM_TEXT = "_query_text", "_item_text"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence model loading: the "Converting SentenceTransformer model" note, the load report
    listing the freshly initialised head, and the weight-loading progress bar."""
    import logging

    from transformers.utils import logging as hf_logging

    st_logger = logging.getLogger("sentence_transformers")
    level = st_logger.level
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    st_logger.setLevel(logging.ERROR)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        st_logger.setLevel(level)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def require_classification_head(model: str, path: Path) -> None:
    """Refuse a checkpoint without a sequence-classification head (its head would be random)."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        config = {}
    archs = config.get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in archs):
        raise ConfigError(
            f"model {model!r}: {path} is not a trained cross-encoder (config.json "
            f"architectures {archs}, expected a *ForSequenceClassification head); "
            "set train: true to train one"
        )


def load_cross_encoder(
    model: str, path: Path, *, trained: bool, device: str, max_length: int
) -> Any:
    """A CrossEncoder (1 logit) from the local directory `path`; `trained`: it must already
    have a classification head. ConfigError (naming `model`) when it cannot be loaded."""
    from shelflab.models.encoders import _offline_env

    _offline_env()
    if trained:
        require_classification_head(model, path)
    from sentence_transformers import CrossEncoder

    try:
        with quiet():
            return CrossEncoder(
                str(path),
                num_labels=1,
                device=device,
                max_length=max_length,
                local_files_only=True,
            )
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"model {model!r}: cannot load cross-encoder {path} ({exc})") from exc


def predict_logits(
    ce: Any, query_texts: list[str], item_texts: list[str], *, show_progress: bool = False
) -> np.ndarray:
    """Raw logits (float64, no sigmoid) of the (query text, item text) pairs, in their order."""
    import numpy as np
    import torch

    from shelflab.timing import Progress, batches

    if not query_texts:
        return np.zeros(0, dtype=np.float64)
    pairs = list(zip(query_texts, item_texts, strict=True))
    out = np.empty(len(pairs), dtype=np.float64)
    with Progress("cross-encoder score", len(pairs), "pairs", enabled=show_progress) as progress:
        for start, stop in batches(len(pairs), PREDICT_BATCH * 16):
            scores = ce.predict(
                pairs[start:stop],
                batch_size=PREDICT_BATCH,
                activation_fn=torch.nn.Identity(),
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[start:stop] = np.asarray(scores, dtype=np.float64).reshape(-1)
            progress.update(stop - start)
    return out
