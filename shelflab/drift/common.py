"""What both parts of a drift report use: seeded row samples, quiet Evidently runs, and
scores that stay strict JSON."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

import polars as pl


def sample_rows(frame: pl.DataFrame, max_rows: int | None, seed: int) -> pl.DataFrame:
    """`frame` itself when small enough, else `max_rows` rows picked with `seed`, in their
    original order (same seed and frame -> same rows)."""
    if max_rows is None or frame.height <= max_rows:
        return frame
    idx = frame.with_row_index("_i").select("_i").sample(n=max_rows, seed=seed)["_i"].sort()
    return frame[idx]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """numpy/scipy RuntimeWarnings of the tests on small or constant samples (division by
    zero in chi-square...): noise on stderr; the scores they give are reported as they are."""
    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
