"""Seeded, leak-free query splits.

Queries are grouped by their normalised text (shelflab.textnorm with the default config, so
"2x4 Stud" and "2 x 4 stud" are one group) and every group goes to one split: no query text
appears in two splits. A group's split depends only on (seed, normalised text), through
sha256, so the assignment is deterministic across runs, platforms and processes, and stable
when the query set grows: adding queries never moves an existing one. The price is that the
fractions are met in expectation, not exactly (binomial noise: about +-1 point at 10% of the
9,436 Home Depot queries).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import polars as pl

from shelflab.contract import QUERY_ID, TEXT, validate_queries
from shelflab.errors import ConfigError
from shelflab.textnorm import NormalizeConfig, normalize

SPLIT = "split"
DEFAULT_NAMES = ("train", "valid", "test")


def check_fractions(fractions: Sequence[float], names: Sequence[str]) -> list[float]:
    """Fractions as floats; ConfigError unless one per name, each in [0, 1], summing to 1."""
    fr = [float(f) for f in fractions]
    if len(fr) != len(names):
        raise ConfigError(
            f"split fractions {list(fractions)} do not match split names {list(names)}"
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"split names must be distinct, got {list(names)}")
    if any(not math.isfinite(f) or f < 0 or f > 1 for f in fr):
        raise ConfigError(f"split fractions must be in [0, 1], got {list(fractions)}")
    if abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must sum to 1, got {list(fractions)} = {sum(fr)}")
    return fr


def unit_hash(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from sha256(seed, key): stable across processes."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_queries(
    queries: pl.DataFrame,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 42,
    *,
    names: Sequence[str] = DEFAULT_NAMES,
    normalize_cfg: NormalizeConfig | None = None,
    source: str = "queries",
) -> pl.DataFrame:
    """Assign every query to a split: returns (query_id, split) in the input's row order.

    `queries` needs columns query_id and text; queries whose normalised text is equal share
    a split. ConfigError for bad fractions/names; InputError for a missing column, an empty
    text or a duplicate query_id.
    """
    cum: list[float] = []
    total = 0.0
    for f in check_fractions(fractions, names):
        total += f
        cum.append(total)
    df = validate_queries(queries, source).select(QUERY_ID, TEXT)

    cfg = normalize_cfg or NormalizeConfig()
    texts = df[TEXT].unique(maintain_order=True).to_list()
    key_of = {t: normalize(t, cfg) for t in texts}
    split_of_key: dict[str, str] = {}
    for key in dict.fromkeys(key_of.values()):
        u = unit_hash(key, seed)
        split_of_key[key] = next(
            (name for name, c in zip(names, cum, strict=True) if u < c),
            _last_nonzero(names, fractions),
        )
    text_split = {t: split_of_key[k] for t, k in key_of.items()}
    return df.select(
        QUERY_ID,
        pl.col(TEXT).replace_strict(text_split, return_dtype=pl.String).alias(SPLIT),
    )


def _last_nonzero(names: Sequence[str], fractions: Sequence[float]) -> str:
    """Where a hash at the float edge of the cumulative sum goes (never a 0-fraction split)."""
    for name, f in zip(reversed(names), reversed(list(fractions)), strict=True):
        if float(f) > 0:
            return name
    raise ConfigError("all split fractions are 0")  # pragma: no cover - caught by the sum


def split_counts(splits: pl.DataFrame) -> dict[str, int]:
    """Number of queries per split."""
    g = splits.group_by(SPLIT).len().sort(SPLIT)
    return dict(zip(g[SPLIT].to_list(), g["len"].to_list(), strict=True))
