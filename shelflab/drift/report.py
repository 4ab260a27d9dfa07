"""Drift of a new batch of product reviews against a reference set, with Evidently 0.7.

Two parts, each an Evidently `Report` (new API, `evidently.Report`):
- tabular: `DataDriftPreset` over the per-review features of `shelflab.drift.features`
  (rating, text length, gaps, Evidently text descriptors...): one `ValueDrift` per column with
  Evidently's default test unless `stattest` is set (>1000 reference rows: Wasserstein
  distance for numbers, Jensen-Shannon for <= 5 distinct values; else K-S / chi-square / Z
  p-values), plus `DriftedColumnsCount`. The heavy-tailed counts (LOG_SCALE: lengths, votes,
  gaps) are tested on a log1p scale: on the raw scale one review with 1,000 votes in a
  random half of a category moved the normed Wasserstein distance of `votes` past 0.1;
- embeddings: `EmbeddingsDrift` on MiniLM embeddings of summary + body (see
  `shelflab.drift.embeddings`: methods, thresholds, subsampling).

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
cfg is the `drift:` section of params.yaml; missing or null keys take DEFAULT_CONFIG
(`shelflab.drift.config`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.atomic import write_json, write_text
from shelflab.drift.common import finite, quiet, sample_rows
from shelflab.drift.config import DEFAULT_CONFIG, resolve_config
from shelflab.drift.embeddings import embedding_part
from shelflab.drift.features import FEATURES, check_reviews, distinct_reviews, drift_features
from shelflab.errors import ConfigError

__all__ = ["DEFAULT_CONFIG", "SUMMARY_KEYS", "DriftResult", "resolve_config", "run_drift",
           "sample_rows"]  # fmt: skip

log = logging.getLogger(__name__)

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
LOG_SCALE = (
    "text_chars",
    "text_words",
    "text_sentences",
    "votes",
    "item_gap_days",
    "user_gap_days",
)


def _tabular_report(ref: pl.DataFrame, cur: pl.DataFrame, columns: list[str], cfg: dict) -> Any:
    """Evidently snapshot of DataDriftPreset over `columns` (all numerical)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=columns)
    report = Report([DataDriftPreset(**_preset_args(columns, cfg))])
    with quiet():
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
            "p_value": None if is_distance else finite(score),
            "distance": finite(score) if is_distance else None,
            "score": finite(score),  # null (not NaN: summary.json is strict JSON) if undefined
        }
    return out


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
    emb_snapshot, embeddings = embedding_part(reference, batch, cfg["embeddings"], cache_dir)
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
