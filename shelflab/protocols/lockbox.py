"""The lockbox: a seeded fraction of the test queries set aside at split time (split
`lockbox`). No stage evaluates it; `shelflab lockbox --model URI` opens it deliberately, once a
model is chosen, and the opening is logged. Test figures that guided choices spend some of
the test split's honesty; the lockbox is what a user gets on queries no one looked at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

LOCKBOX = "lockbox"


def set_aside(splits: pl.DataFrame, fraction: float, seed: int) -> pl.DataFrame:
    """`splits` (query_id, split) with round(fraction x test queries) of the test queries,
    a seeded sample, moved to split `lockbox`; unchanged when `fraction` is 0."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"lockbox fraction must be in [0, 1), got {fraction}")
    test = splits.filter(pl.col("split") == "test")["query_id"]
    n = round(fraction * test.len())
    if n == 0:
        return splits
    chosen = test.sort().sample(n=n, seed=seed)
    return splits.with_columns(
        pl.when(pl.col("query_id").is_in(chosen.implode()))
        .then(pl.lit(LOCKBOX))
        .otherwise(pl.col("split"))
        .alias("split")
    )


def set_aside_per_params(splits: pl.DataFrame, split_params: Mapping[str, Any]) -> pl.DataFrame:
    """set_aside with the lockbox keys of a params file's `split` section (the schema's
    defaults where a key is absent: no lockbox)."""
    from shelflab.params_schema import Lockbox

    keys = {k: split_params[k] for k in Lockbox.model_fields if k in split_params}
    box = Lockbox.model_validate(keys)
    return set_aside(splits, box.lockbox_fraction, box.lockbox_seed)
