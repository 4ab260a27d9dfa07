"""The `drift:` section of params.yaml: DEFAULT_CONFIG, and `resolve_config`, which fills the
defaults in and checks the values. Keys it does not know are left to their owners (the
pipeline stage's batches, model, ...)."""

from __future__ import annotations

import copy
from typing import Any

from shelflab.drift.features import FEATURES, MIN_ROWS
from shelflab.errors import ConfigError

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
