"""Drift of a new batch of product reviews against a reference set, with Evidently 0.7.

Two parts, each an Evidently `Report` (new API, `evidently.Report`):
- tabular: `DataDriftPreset` over the per-review features of `shelflab.drift.features`
  (rating, text length, gaps, Evidently text descriptors...): one `ValueDrift` per column with
  Evidently's default test unless `stattest` is set (>1000 reference rows: Wasserstein
  distance for numbers, Jensen-Shannon for <= 5 distinct values; else K-S / chi-square / Z
  p-values), plus `DriftedColumnsCount`. The heavy-tailed counts (LOG_SCALE: lengths, votes,
  gaps) are tested on a log1p scale: on the raw scale one review with 1,000 votes in a
  random half of a category moved the normed Wasserstein distance of `votes` past 0.1;
- embeddings: `EmbeddingsDrift` on MiniLM embeddings of summary + body, on a seeded
  subsample of at most `embeddings.max_rows` reviews per side (embedding is the slow part).
  Methods: "mmd" (default: squared maximum mean discrepancy, RBF kernel, drift when
  > 0.015), "model" (ROC AUC of a classifier telling the two apart, > 0.55), "distance"
  (euclidean distance of the mean embeddings, > 0.2), "ratio" (share of drifted components,
  > 0.2); `embeddings.threshold` overrides. MMD is the default: against a random half of
  All_Beauty's reviews it gave 0.00-0.001 for the other half and 0.13-0.16 for Gift_Cards
  reviews, while the classifier's AUC for such hold-outs ranged 0.49-0.54 at 400-500 reviews
  a side, close to its fixed 0.55 threshold (and its spread grows as batches shrink).

Rule: dataset_drift = (share of drifted tabular columns >= drift_share) OR embedding drift.
The reasoning: a batch whose text moved to other topics can keep every tabular distribution
(ratings, lengths) in place, and the embeddings are what sees that.

`run_drift(reference, batch, cfg)` -> DriftResult with `.html` (both parts on one Evidently
page) and `.summary`, which `.save(out_dir)` writes (atomically) as report.html and
summary.json:
  dataset_drift (bool), drift_share (share of drifted tabular columns), drift_share_threshold,
  n_reference / n_batch (distinct reviews compared in the tabular part),
  columns: {name: {drifted, statistic (Evidently's test name), stattest_threshold,
            p_value (p-value tests, else null), distance (distance tests, else null), score}},
  embeddings: {method, score, threshold, drifted, model, n_reference, n_batch (embedded)},
  evidently_version.
cfg is the `drift:` section of params.yaml; missing or null keys take DEFAULT_CONFIG, keys
it does not know are left to their owners (the pipeline stage's batches, model, ...).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from shelflab.atomic import write_json, write_text
from shelflab.drift.features import (
    FEATURES,
    MIN_ROWS,
    check_reviews,
    distinct_reviews,
    drift_features,
    review_text,
)
from shelflab.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_CONFIG: dict[str, Any] = {
    "columns": None,  # None: every column of drift_features.FEATURES
    "stattest": None,  # None: Evidently's default per column; else e.g. "ks", "wasserstein"
    "stattest_threshold": None,  # None: the test's default
    "drift_share": 0.5,  # dataset drift when this share of tabular columns drifted
    "max_rows": None,  # tabular part: seeded subsample of each side above this (None: all)
    "sample_seed": 0,
    "embeddings": {
        "model": DEFAULT_MODEL,
        "method": "mmd",  # mmd | model | distance | ratio
        "threshold": None,  # None: the method's default
        "max_rows": 2000,  # per side; a seeded subsample above this
        "seed": 0,
        "batch_size": 64,
        "max_seq_length": 128,  # tokens: reviews are cut here (speed; topic shows early)
        "projection": "pca",  # 2-D map in the report: pca (fast) | tsne (minutes at 2000)
    },
}
EMBEDDING_METHODS = ("model", "mmd", "distance", "ratio")
PROJECTIONS = ("pca", "tsne")
SUMMARY_KEYS = (
    "dataset_drift",
    "drift_share",
    "drift_share_threshold",
    "n_reference",
    "n_batch",
    "columns",
    "embeddings",
    "evidently_version",
)
# Evidently tests whose score is a distance (drift when score >= threshold); every other test
# returns a p-value (drift when p < threshold). Keyed by the display name Evidently reports.
DISTANCE_TESTS = frozenset(
    {
        "Wasserstein distance (normed)",
        "Jensen-Shannon distance",
        "Hellinger distance",
        "Kullback-Leibler divergence",
        "PSI",
        "Energy-distance",
    }
)
EMBEDDINGS_NAME = "review_text"
LOG_SCALE = (
    "text_chars",
    "text_words",
    "text_sentences",
    "votes",
    "item_gap_days",
    "user_gap_days",
)


# ---------------------------------------------------------------------------- config


def resolve_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """DEFAULT_CONFIG updated with `cfg` (one level deep for `embeddings`), validated. Keys
    outside DEFAULT_CONFIG are ignored; unknown keys under `embeddings` are an error."""
    if cfg is not None and not isinstance(cfg, dict):
        raise ConfigError(f"drift: expected a mapping, got {type(cfg).__name__}")
    # other keys of the params section belong to the pipeline stage (batches, model, ...)
    cfg = {k: v for k, v in (cfg or {}).items() if k in DEFAULT_CONFIG}
    out = copy.deepcopy(DEFAULT_CONFIG)
    emb = cfg.pop("embeddings", None) or {}
    if not isinstance(emb, dict):
        raise ConfigError("drift.embeddings must be a mapping")
    unknown = sorted(set(emb) - set(out["embeddings"]))
    if unknown:
        raise ConfigError(
            f"drift.embeddings: unknown key(s) {', '.join(unknown)} "
            f"(expected: {', '.join(out['embeddings'])})"
        )
    # null means "the default" for every key (all null defaults are "Evidently decides")
    out.update({k: v for k, v in cfg.items() if v is not None})
    out["embeddings"].update({k: v for k, v in emb.items() if v is not None})
    _validate(out)
    return out


def _validate(cfg: dict[str, Any]) -> None:
    share = cfg["drift_share"]
    if not isinstance(share, int | float) or not 0 < share <= 1:
        raise ConfigError(f"drift.drift_share must be in (0, 1], got {share!r}")
    columns = cfg["columns"]
    if columns is not None:
        if not isinstance(columns, list) or not columns:
            raise ConfigError("drift.columns must be a non-empty list of feature names or null")
        bad = [c for c in columns if c not in FEATURES]
        if bad:
            raise ConfigError(
                f"drift.columns: unknown feature(s) {', '.join(map(str, bad))} "
                f"(expected some of: {', '.join(FEATURES)})"
            )
    emb = cfg["embeddings"]
    if emb["method"] not in EMBEDDING_METHODS:
        raise ConfigError(
            f"drift.embeddings.method {emb['method']!r} unknown "
            f"(expected one of: {', '.join(EMBEDDING_METHODS)})"
        )
    if emb["projection"] not in PROJECTIONS:
        raise ConfigError(
            f"drift.embeddings.projection {emb['projection']!r} unknown "
            f"(expected one of: {', '.join(PROJECTIONS)})"
        )
    limits = {"drift.max_rows": cfg["max_rows"], "drift.embeddings.max_rows": emb["max_rows"]}
    for where, value in limits.items():
        if value is not None and (not isinstance(value, int) or value < MIN_ROWS):
            raise ConfigError(f"{where} must be an integer >= {MIN_ROWS} or null, got {value!r}")


# ---------------------------------------------------------------------------- embeddings


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


def sample_rows(frame: pl.DataFrame, max_rows: int | None, seed: int) -> pl.DataFrame:
    """`frame` itself when small enough, else `max_rows` rows picked with `seed`, in their
    original order (same seed and frame -> same rows)."""
    if max_rows is None or frame.height <= max_rows:
        return frame
    idx = frame.with_row_index("_i").select("_i").sample(n=max_rows, seed=seed)["_i"].sort()
    return frame[idx]


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


# ---------------------------------------------------------------------------- Evidently runs


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """numpy/scipy RuntimeWarnings of the tests on small or constant samples (division by
    zero in chi-square...): noise on stderr; the scores they give are reported as they are."""
    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _tabular_report(ref: pl.DataFrame, cur: pl.DataFrame, columns: list[str], cfg: dict) -> Any:
    """Evidently snapshot of DataDriftPreset over `columns` (all numerical)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=columns)
    report = Report([DataDriftPreset(**_preset_args(columns, cfg))])
    with _quiet():
        return report.run(
            Dataset.from_pandas(cur.select(columns).to_pandas(), data_definition=definition),
            Dataset.from_pandas(ref.select(columns).to_pandas(), data_definition=definition),
        )


def _preset_args(columns: list[str], cfg: dict) -> dict[str, Any]:
    return {
        "columns": columns,
        "drift_share": float(cfg["drift_share"]),
        "method": cfg["stattest"],
        "threshold": cfg["stattest_threshold"],
    }


def _column_results(snapshot: Any, columns: list[str], cfg: dict) -> dict[str, dict[str, Any]]:
    """Per-column test results. They come from the DataDriftTable the preset rendered (same
    parameters -> Evidently's cached result), so they match the HTML."""
    from evidently.legacy.metrics import DataDriftTable

    args = _preset_args(columns, cfg)
    table = DataDriftTable(
        columns=columns, stattest=args["method"], stattest_threshold=args["threshold"]
    )
    result, _ = snapshot.context.get_legacy_metric(table, None, None)
    out = {}
    for name in columns:
        col = result.drift_by_columns[name]
        score = float(col.drift_score)
        is_distance = col.stattest_name in DISTANCE_TESTS
        out[name] = {
            "drifted": bool(col.drift_detected),
            "statistic": col.stattest_name,
            "stattest_threshold": float(col.stattest_threshold),
            "p_value": None if is_distance else _finite(score),
            "distance": _finite(score) if is_distance else None,
            "score": _finite(score),  # null (not NaN: summary.json is strict JSON) if undefined
        }
    return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


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
    with _projection(projection), _quiet():
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


def combined_html(parts: list[tuple[str, Any]]) -> str:
    """One standalone Evidently page with each snapshot's widgets (and tests) under a title."""
    from evidently.core.metric_types import render_widgets
    from evidently.legacy.renderers.html_widgets import group_widget

    widgets = []
    for title, snapshot in parts:
        widgets.append(group_widget(title=title, widgets=list(snapshot._widgets)))
        widgets.extend(snapshot._tests_widgets)
    return render_widgets(widgets, as_iframe=False)


# ---------------------------------------------------------------------------- result


@dataclass
class DriftResult:
    summary: dict[str, Any]
    html: str

    @property
    def dataset_drift(self) -> bool:
        return bool(self.summary["dataset_drift"])

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write report.html and summary.json into `out_dir` (each atomically)."""
        out = Path(out_dir)
        paths = {"report": out / "report.html", "summary": out / "summary.json"}
        write_text(self.html, paths["report"])
        write_json(self.summary, paths["summary"])
        return paths


def _log_scale(features: pl.DataFrame) -> pl.DataFrame:
    return features.with_columns(
        pl.col(c).cast(pl.Float64).log1p() for c in LOG_SCALE if c in features.columns
    )


def _usable_columns(ref: pl.DataFrame, cur: pl.DataFrame, columns: list[str]) -> list[str]:
    """Columns with values on both sides: Evidently cannot test an all-null column (e.g. item
    gaps in a batch where every item is reviewed once)."""
    keep = [c for c in columns if ref[c].drop_nulls().len() and cur[c].drop_nulls().len()]
    dropped = sorted(set(columns) - set(keep))
    if dropped:
        log.warning("drift: no values on one side, not tested: %s", ", ".join(dropped))
    if not keep:
        raise ConfigError(f"drift: no testable column among {', '.join(columns)}")
    return keep


def _tabular_part(
    reference: pl.DataFrame, batch: pl.DataFrame, cfg: dict
) -> tuple[Any, dict[str, dict[str, Any]], tuple[int, int]]:
    """(snapshot, per-column results, (reference rows, batch rows) compared)."""
    ref = _log_scale(drift_features(sample_rows(reference, cfg["max_rows"], cfg["sample_seed"])))
    cur = _log_scale(drift_features(sample_rows(batch, cfg["max_rows"], cfg["sample_seed"])))
    columns = _usable_columns(ref, cur, list(cfg["columns"] or FEATURES))
    snapshot = _tabular_report(ref, cur, columns, cfg)
    return snapshot, _column_results(snapshot, columns, cfg), (ref.height, cur.height)


def _embedding_part(
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
        "score": _finite(score),
        "threshold": float(method.threshold),
        "drifted": drifted,
        "model": emb["model"],
        "n_reference": ref.height,
        "n_batch": cur.height,
    }


def run_drift(
    reference: pl.DataFrame,
    batch: pl.DataFrame,
    cfg: dict[str, Any] | None = None,
    *,
    cache_dir: str | Path | None = None,
    labels: tuple[str, str] = ("reference", "batch"),
) -> DriftResult:
    """Drift of `batch` against `reference` (review frames, see shelflab.drift.features).

    Each side is first cut to distinct reviews (Amazon repeats a review under every variant
    of a product); n_reference / n_batch count those. `labels` name the two frames in errors
    (e.g. their files); `cache_dir` keeps the review embeddings on disk between runs.
    Raises InputError for a frame with too few reviews, missing columns or columns of the
    wrong type; ConfigError for a bad cfg."""
    import evidently

    cfg = resolve_config(cfg)
    check_reviews(reference, labels[0])
    check_reviews(batch, labels[1])
    reference, batch = distinct_reviews(reference), distinct_reviews(batch)
    check_reviews(reference, labels[0])
    check_reviews(batch, labels[1])
    tab_snapshot, columns, (n_ref, n_cur) = _tabular_part(reference, batch, cfg)
    emb_snapshot, embeddings = _embedding_part(reference, batch, cfg["embeddings"], cache_dir)
    n_drifted = sum(c["drifted"] for c in columns.values())
    share = n_drifted / len(columns)
    summary = {
        "dataset_drift": bool(share >= cfg["drift_share"] or embeddings["drifted"]),
        "drift_share": share,
        "drift_share_threshold": float(cfg["drift_share"]),
        "n_reference": n_ref,
        "n_batch": n_cur,
        "columns": columns,
        "embeddings": embeddings,
        "evidently_version": evidently.__version__,
    }
    html = combined_html(
        [
            (f"Tabular drift: {n_drifted} of {len(columns)} columns", tab_snapshot),
            (f"Embedding drift ({embeddings['method']}, {embeddings['model']})", emb_snapshot),
        ]
    )
    return DriftResult(summary=summary, html=html)
