"""The one contract every track shares (TREC / ranx style).

- queries: query_id (str), text (str)            [next-item track later: history list[str]]
- qrels:   query_id (str), item_id (str), grade (float; 0 = not relevant; unjudged = 0)
           [next-item track from review files: + rating, a training label the harness ignores]
- run:     query_id (str), item_id (str), score (float), rank (int, 1 = best)
- items:   item_id (str), text (str) plus optional fields

Ids are strings everywhere so that TREC files, Parquet and CSV round-trip without surprises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelflab.errors import InputError

QUERY_ID, ITEM_ID, TEXT, GRADE, SCORE, RANK = (
    "query_id",
    "item_id",
    "text",
    "grade",
    "score",
    "rank",
)
HISTORY = "history"  # next-item queries: the user's item ids, oldest first (instead of text)
# review-file sequences: the star rating of each history item (a list aligned with the items),
# and on qrels the rating the user gave the relevant item
RATINGS, RATING = "ratings", "rating"

QUERIES_SCHEMA = {QUERY_ID: pl.String, TEXT: pl.String}
QRELS_SCHEMA = {QUERY_ID: pl.String, ITEM_ID: pl.String, GRADE: pl.Float64}
RUN_SCHEMA = {QUERY_ID: pl.String, ITEM_ID: pl.String, SCORE: pl.Float64, RANK: pl.Int64}
ITEMS_SCHEMA = {ITEM_ID: pl.String, TEXT: pl.String}


def require_columns(df: pl.DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(df.columns) or 'none'}",
            path=source,
            expected=f"columns {', '.join(columns)}",
        )


def _cast(df: pl.DataFrame, schema: dict[str, pl.DataType], source: str) -> pl.DataFrame:
    require_columns(df, list(schema), source)
    out = []
    for name, dtype in schema.items():
        col = df[name]
        if dtype == pl.String:
            out.append(col.cast(pl.String))
            continue
        cast = col.cast(dtype, strict=False)
        bad = cast.is_null() & col.is_not_null()
        if bad.any():
            i = int(bad.arg_max())
            raise InputError(
                f"column {name!r} has {col[i]!r}",
                path=source,
                row=i + 1,
                expected=f"a {dtype} value",
            )
        out.append(cast)
    return pl.DataFrame(out).with_columns([df[c] for c in df.columns if c not in schema])


def require_unique(df: pl.DataFrame, column: str, source: str) -> None:
    """One row per `column` value, or an InputError naming the first repeated row."""
    dup = df[column].is_duplicated()
    if dup.any():
        i = int(dup.arg_max())
        raise InputError(
            f"duplicate {column} {df[column][i]!r}",
            path=source,
            row=i + 1,
            expected=f"one row per {column}",
        )


def _first_null(df: pl.DataFrame, columns: list[str], source: str) -> None:
    for name in columns:
        nulls = df[name].is_null()
        if nulls.any():
            raise InputError(
                f"empty {name!r}",
                path=source,
                row=int(nulls.arg_max()) + 1,
                expected=f"a non-empty {name}",
            )


def validate_queries(df: pl.DataFrame, source: str = "queries") -> pl.DataFrame:
    """Cast and check a queries table; empty text is an error (the loaders quarantine such
    rows before this point, so reaching here means the caller passed bad data directly)."""
    df = _cast(df, QUERIES_SCHEMA, source)
    _first_null(df, [QUERY_ID, TEXT], source)
    empty = df[TEXT].str.strip_chars().str.len_chars() == 0
    if empty.any():
        raise InputError(
            "empty query text", path=source, row=int(empty.arg_max()) + 1, expected="non-empty text"
        )
    require_unique(df, QUERY_ID, source)
    return df


def validate_qrels(df: pl.DataFrame, source: str = "qrels") -> pl.DataFrame:
    """Cast and check qrels: finite grades, one grade per (query_id, item_id). Exact duplicate
    rows are harmless and collapsed; conflicting grades are an error."""
    df = _cast(df, QRELS_SCHEMA, source)
    _first_null(df, [QUERY_ID, ITEM_ID, GRADE], source)
    _finite(df, GRADE, source)
    if not may_repeat(pair_hash(query_hash(df[QUERY_ID]), df[ITEM_ID])):
        return df  # no pair repeats: nothing to collapse, no conflict (the common case)
    df = df.unique(subset=[QUERY_ID, ITEM_ID, GRADE], keep="first", maintain_order=True)
    i = first_duplicate_pair(df)
    if i is not None:
        q, d = df[QUERY_ID][i], df[ITEM_ID][i]
        grades = df.filter((pl.col(QUERY_ID) == q) & (pl.col(ITEM_ID) == d))[GRADE].to_list()
        raise InputError(
            f"conflicting grades {grades} for query {q!r}, item {d!r}",
            path=source,
            expected="one grade per (query_id, item_id)",
        )
    return df


def validate_run(df: pl.DataFrame, source: str = "run") -> pl.DataFrame:
    """Cast and check a run: finite scores, no duplicate (query_id, item_id). When `rank` is
    absent it is derived from the score (descending)."""
    return check_run(df, source).frame


_MIX = np.uint64(0x9E3779B97F4A7C15)


def query_hash(query_ids: pl.Series) -> np.ndarray:
    """64-bit hashes of query ids (the first half of `pair_hash`)."""
    return query_ids.hash(seed=1).to_numpy()


def pair_hash(query_hashes: np.ndarray, item_ids: pl.Series) -> np.ndarray:
    """64-bit hashes of (query_id, item_id) pairs, from `query_hash` of the query ids. Equal
    pairs hash equal; a hash match must still be confirmed on the strings."""
    return (query_hashes * _MIX) ^ item_ids.hash(seed=2).to_numpy()


def may_repeat(hashes: np.ndarray) -> bool:
    """False only when no hash repeats (True may be a collision)."""
    if len(hashes) < 2:
        return False
    # polars' sort uses every core and a radix-style sort: ~4x numpy's on 5M uint64
    ordered = pl.Series(hashes).sort().to_numpy()
    return bool((ordered[1:] == ordered[:-1]).any())


def first_duplicate_pair(df: pl.DataFrame, pair: np.ndarray | None = None) -> int | None:
    """Index of the first row whose (query_id, item_id) occurs more than once, or None. Sorting
    64-bit hashes rules duplicates out several times faster than hashing the string pairs into a
    table; only a repeated hash is confirmed on the strings. `pair`: the rows' `pair_hash`
    when the caller has it already."""
    if pair is None:
        pair = pair_hash(query_hash(df[QUERY_ID]), df[ITEM_ID])
    if not may_repeat(pair):
        return None
    dup = df.select(pl.struct(QUERY_ID, ITEM_ID).is_duplicated()).to_series()
    return int(dup.arg_max()) if dup.any() else None


@dataclass(frozen=True)
class Keys:
    """64-bit hashes of a run's query_id and (query_id, item_id): integer keys for joins and
    the duplicate check. A hash match is always confirmed on the strings."""

    query: np.ndarray
    pair: np.ndarray

    @classmethod
    def of(cls, df: pl.DataFrame) -> Keys:
        query = query_hash(df[QUERY_ID])
        return cls(query, pair_hash(query, df[ITEM_ID]))

    def may_have_duplicates(self) -> bool:
        """False only when no (query_id, item_id) repeats (True may be a collision)."""
        return may_repeat(self.pair)


@dataclass(frozen=True)
class CheckedRun:
    """A run that passed `validate_run`'s checks (RUN_SCHEMA columns, typed, finite scores, no
    repeated pair), with the keys the check hashed. The harness takes it as is instead of
    hashing and checking the frame a second time (a third of evaluating a 5M-row run from a
    file). Made by `check_run` and the run readers only."""

    frame: pl.DataFrame
    keys: Keys


def check_run(df: pl.DataFrame, source: str = "run") -> CheckedRun:
    """`validate_run`, keeping the hashed keys for the harness."""
    if RANK not in df.columns and SCORE in df.columns:
        df = add_rank(df)
    df = _cast(df, RUN_SCHEMA, source)
    _first_null(df, [QUERY_ID, ITEM_ID, SCORE], source)
    _finite(df, SCORE, source)
    keys = Keys.of(df)
    i = first_duplicate_pair(df, keys.pair)
    if i is not None:
        raise InputError(
            f"duplicate (query_id, item_id) = ({df[QUERY_ID][i]!r}, {df[ITEM_ID][i]!r})",
            path=source,
            row=i + 1,
            expected="each item at most once per query",
        )
    return CheckedRun(df, keys)


SMALL_RUN = 2_000  # rows: one query's run this small is ranked in Python (see add_rank)


def add_rank(run: pl.DataFrame) -> pl.DataFrame:
    """Rank 1..n per query by score descending; ties broken by item_id descending, the order
    trec_eval uses, so ranks written by ShelfLab agree with how trec_eval reads the run.

    A single query's small run (what serving one request makes) is ordered by Python's sort
    on the same keys: a polars sort with a window cost ~0.6 ms, several times per request."""
    if 0 < run.height <= SMALL_RUN and run[QUERY_ID].n_unique() == 1:
        scores, items = run[SCORE].to_list(), run[ITEM_ID].to_list()
        if all(s is not None and s == s for s in scores) and None not in items:  # no NaN/null
            order = sorted(range(run.height), key=lambda i: (scores[i], items[i]), reverse=True)
            return run[order].with_columns(
                pl.Series(RANK, range(1, run.height + 1), dtype=pl.Int64)
            )
    return run.sort([QUERY_ID, SCORE, ITEM_ID], descending=[False, True, True]).with_columns(
        pl.int_range(1, pl.len() + 1).over(QUERY_ID).cast(pl.Int64).alias(RANK)
    )


def _finite(df: pl.DataFrame, name: str, source: str) -> None:
    bad = ~df[name].is_finite()
    if bad.any():
        i = int(bad.arg_max())
        value = df[name][i]
        shown = "NaN" if value is not None and math.isnan(value) else repr(value)
        raise InputError(
            f"non-finite {name} {shown}", path=source, row=i + 1, expected="a finite number"
        )
