"""Global time split: every event before t1 is train, [t1, t2) valid, from t2 on test.

The cut points are quantiles of the event times, so the fractions hold up to ties: events that
share a timestamp (Amazon 2018 review times have day resolution) always land in one period, which
is what keeps a later period out of the earlier ones. Nothing is random: the same events give the
same split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from shelflab.errors import ConfigError, InputError
from shelflab.protocols.random_split import DEFAULT_NAMES, SPLIT, check_fractions


@dataclass(frozen=True)
class TimeSplit:
    splits: pl.DataFrame  # id column, split
    cuts: list[int]  # start time of every period after the first (unix seconds)
    names: tuple[str, ...]

    def summary(self) -> dict[str, object]:
        counts = dict(self.splits.group_by(SPLIT).len().iter_rows())
        return {
            "method": "time",
            "events_per_split": {n: int(counts.get(n, 0)) for n in self.names},
            "cuts": [
                {"starts": name, "at": c, "date": _date(c)}
                for name, c in zip(self.names[1:], self.cuts, strict=True)
            ],
        }


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def time_cuts(times: pl.Series, fractions: Sequence[float]) -> list[int]:
    """The first timestamp of each later period: the value at the cumulative-fraction rank."""
    ordered = times.sort()
    n = ordered.len()
    cuts, total = [], 0.0
    for f in fractions[:-1]:
        total += f
        cuts.append(int(ordered[min(n - 1, math.floor(total * n))]))
    return cuts


def time_split(
    events: pl.DataFrame,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    *,
    id_col: str = "query_id",
    time_col: str = "timestamp",
    names: Sequence[str] = DEFAULT_NAMES,
    source: str = "events",
) -> TimeSplit:
    """(id, split) in the input's row order plus the cut times. ConfigError when a period with a
    non-zero fraction comes out empty (too few distinct timestamps for the fractions)."""
    fr = check_fractions(fractions, names)
    for col in (id_col, time_col):
        if col not in events.columns:
            raise InputError(
                f"missing column {col!r}", path=source, expected=f"{id_col}, {time_col}"
            )
    if events.height == 0:
        raise InputError("no events to split", path=source, expected="at least one row")
    nulls = events[time_col].is_null()
    if nulls.any():
        row = int(nulls.arg_max()) + 1
        raise InputError(f"{time_col} is empty", path=source, row=row, expected="a unix time")
    cuts = time_cuts(events[time_col], fr)
    # period index = number of cuts at or before the event time
    period = pl.lit(0, dtype=pl.Int32)
    for c in cuts:
        period = period + (pl.col(time_col) >= c).cast(pl.Int32)
    out = events.select(
        pl.col(id_col),
        period.replace_strict(dict(enumerate(names)), return_dtype=pl.String).alias(SPLIT),
    )
    present = set(out[SPLIT].unique().to_list())
    empty = [n for n, f in zip(names, fr, strict=True) if f > 0 and n not in present]
    if empty:
        raise ConfigError(
            f"time split of {source}: period(s) {', '.join(empty)} came out empty "
            f"(cuts {[_date(c) for c in cuts]}; too few distinct times for fractions {list(fr)})"
        )
    return TimeSplit(out, cuts, tuple(names))
