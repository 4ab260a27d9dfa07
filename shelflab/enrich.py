"""Enrichment of the contract tables: the `text` every model sees, the raw text kept beside it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from shelflab.contract import TEXT
from shelflab.textnorm import NormalizeConfig, normalize_series


def normalize_frame(df: pl.DataFrame, params: Mapping[str, Any] | None) -> pl.DataFrame:
    """`text` normalised by the `enrich` params; the original goes to `raw_text`."""
    cfg = NormalizeConfig.from_params(params)
    raw = df[TEXT] if "raw_text" not in df.columns else df["raw_text"]
    return df.with_columns(raw.alias("raw_text"), normalize_series(raw, cfg).alias(TEXT))
