"""The embedding part of a drift report: Evidently's `EmbeddingsDrift` on MiniLM embeddings of
each review's summary + body, on a seeded subsample of at most `embeddings.max_rows` reviews
per side (embedding is the slow part). Methods: "mmd" (default: squared maximum mean
discrepancy, RBF kernel, drift when > 0.015), "model" (ROC AUC of a classifier telling the two
apart, > 0.55), "distance" (euclidean distance of the mean embeddings, > 0.2), "ratio" (share
of drifted components, > 0.2); `embeddings.threshold` overrides. MMD is the default: against a
random half of All_Beauty's reviews it gave 0.00-0.001 for the other half and 0.13-0.16 for
Gift_Cards reviews, while the classifier's AUC for such hold-outs ranged 0.49-0.54 at 400-500
reviews a side, close to its fixed 0.55 threshold (and its spread grows as batches shrink).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from shelflab.drift.common import finite, quiet, sample_rows
from shelflab.drift.config import DEFAULT_MODEL
from shelflab.drift.features import review_text

if TYPE_CHECKING:
    import numpy as np

EMBEDDINGS_NAME = "review_text"


def embed_reviews(
    texts: list[str],
    model: str = DEFAULT_MODEL,
    batch_size: int = 64,
    *,
    max_seq_length: int | None = 128,
    cache_dir: str | Path | None = None,
    device: str = "auto",
) -> np.ndarray:
    """L2-normalised float32 embeddings of `texts` (packaged weights, never downloaded);
    through the on-disk EmbeddingCache when `cache_dir` is given."""
    from shelflab.models.device import resolve_device
    from shelflab.models.encoders import encode, load_encoder, model_fingerprint, resolve_model_path

    path = resolve_model_path(model)

    @functools.cache
    def encoder() -> Any:  # loaded only when some text is not in the cache yet
        return load_encoder(str(path), resolve_device(device), max_seq_length)

    def run(batch: list[str]) -> np.ndarray:
        return encode(encoder(), batch, batch_size)

    if cache_dir is None:
        return run(texts)
    from shelflab.models.embedding_cache import EmbeddingCache
    from shelflab.models.encoders import embedding_dim

    key = model_fingerprint(path, f"max_seq_length={max_seq_length}")
    cache = EmbeddingCache(
        cache_dir, key, lambda: embedding_dim(encoder()), info={"model": model, "path": str(path)}
    )
    return cache.embed(texts, run)


def _drift_method(method: str, threshold: float | None) -> Any:
    from evidently.metrics.embeddings import (
        DistanceDriftMethod,
        MMDDriftMethod,
        ModelDriftMethod,
        RatioDriftMethod,
    )

    cls = {
        "model": ModelDriftMethod,
        "mmd": MMDDriftMethod,
        "distance": DistanceDriftMethod,
        "ratio": RatioDriftMethod,
    }[method]
    return cls() if threshold is None else cls(threshold=float(threshold))


class _Projection2D:
    """Stands in for sklearn's TSNE in Evidently's embedding plot (only the plot: the drift
    score never sees it). "pca": t-SNE of 2 x 2000 points takes minutes on a small CPU, PCA
    milliseconds; "tsne": t-SNE, seeded. Both add a tiny seeded jitter: Evidently draws a
    Gaussian KDE of each side, which fails on a singular covariance (a side of two reviews,
    or of identical texts such as "Five Stars")."""

    kind = "pca"

    def __init__(self, n_components: int = 2, **_: Any) -> None:
        self.n_components = n_components

    def fit_transform(self, x: Any) -> np.ndarray:
        import numpy as np

        if self.kind == "tsne":
            from sklearn.manifold import TSNE

            out = TSNE(n_components=self.n_components, random_state=0).fit_transform(x)
        else:
            from sklearn.decomposition import PCA

            out = PCA(n_components=self.n_components, svd_solver="full").fit_transform(x)
        scale = float(np.std(out)) or 1.0
        rng = np.random.default_rng(0)
        return out + rng.normal(scale=1e-3 * scale, size=out.shape)


@contextlib.contextmanager
def _projection(kind: str) -> Iterator[None]:
    """Evidently 0.7's EmbeddingsDriftMetric calls the module-level TSNE for its plot; it
    gets a _Projection2D of `kind` for the duration of one report run."""
    from evidently.legacy.metrics.data_drift import embeddings_drift

    projection = type("Projection2D", (_Projection2D,), {"kind": kind})
    original = embeddings_drift.TSNE
    embeddings_drift.TSNE = projection
    try:
        yield
    finally:
        embeddings_drift.TSNE = original


def _embedding_report(
    ref_emb: np.ndarray, cur_emb: np.ndarray, method: Any, projection: str
) -> Any:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics.embeddings import EmbeddingsDrift

    cols = [f"emb_{i}" for i in range(ref_emb.shape[1])]
    definition = DataDefinition(numerical_columns=[], embeddings={EMBEDDINGS_NAME: cols})
    report = Report([EmbeddingsDrift(embeddings_name=EMBEDDINGS_NAME, drift_method=method)])
    with _projection(projection), quiet():
        return report.run(
            Dataset.from_pandas(pd.DataFrame(cur_emb, columns=cols), data_definition=definition),
            Dataset.from_pandas(pd.DataFrame(ref_emb, columns=cols), data_definition=definition),
        )


def _embedding_result(snapshot: Any, method: Any) -> tuple[float, bool]:
    """(score, drifted) from the legacy EmbeddingsDriftMetric the report computed (cached)."""
    from evidently.metrics.embeddings import EmbeddingsDrift, EmbeddingsDriftCalculation

    calc = EmbeddingsDriftCalculation(
        "drift", EmbeddingsDrift(embeddings_name=EMBEDDINGS_NAME, drift_method=method)
    )
    result, _ = snapshot.context.get_legacy_metric(calc.legacy_metric(), calc._gen_input_data, None)
    return float(result.drift_score), bool(result.drift_detected)


def embedding_part(
    reference: pl.DataFrame, batch: pl.DataFrame, emb: dict, cache_dir: str | Path | None
) -> tuple[Any, dict[str, Any]]:
    ref = sample_rows(reference, emb["max_rows"], emb["seed"])
    cur = sample_rows(batch, emb["max_rows"], emb["seed"])
    texts = review_text(ref).to_list() + review_text(cur).to_list()
    vectors = embed_reviews(
        texts,
        emb["model"],
        emb["batch_size"],
        max_seq_length=emb["max_seq_length"],
        cache_dir=cache_dir,
    )
    method = _drift_method(emb["method"], emb["threshold"])
    snapshot = _embedding_report(
        vectors[: ref.height], vectors[ref.height :], method, emb["projection"]
    )
    score, drifted = _embedding_result(snapshot, method)
    return snapshot, {
        "method": emb["method"],
        "score": finite(score),
        "threshold": float(method.threshold),
        "drifted": drifted,
        "model": emb["model"],
        "n_reference": ref.height,
        "n_batch": cur.height,
    }
