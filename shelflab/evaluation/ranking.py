"""Integer keys and within-query rank positions for a run: the vectorised core behind
`shelflab.evaluation.harness` (hashing, hash joins confirmed on the strings, and ranks by score
descending then item_id descending, trec_eval's order)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from shelflab.contract import ITEM_ID, QUERY_ID, SCORE, Keys, query_hash


def join_on_keys(
    left: pl.DataFrame,
    left_keys: np.ndarray,
    right: pl.DataFrame,
    right_keys: np.ndarray,
    on: list[str],
) -> pl.DataFrame:
    """Inner join of left (with a `row` index) and right on the string columns `on`, through
    their 64-bit hashes; hash matches whose strings differ are dropped."""
    joined = (
        pl.DataFrame({"_k": left_keys})
        .with_row_index("row")
        .join(right.with_columns(pl.Series("_k", right_keys)), on="_k")
    )
    rows = joined["row"]
    same = (
        pl.all_horizontal([left[c].gather(rows) == joined[c] for c in on])
        if joined.height
        else None
    )
    if same is not None:
        joined = joined.filter(same)
    return joined.drop("_k", *on)


# extra cells a padded (query x rank) score matrix may hold beyond 4 per run row before the
# row-wise sort gives way to one global sort (runs with a few very long queries)
_PADDING_ALLOWANCE = 1_000_000


@dataclass(frozen=True)
class Ranking:
    position: np.ndarray  # per run row: 0-based rank within its query (-1: not evaluated)
    max_len: int  # longest run of an evaluated query
    n_run_queries: int
    n_common: int  # run queries present in the qrels
    n_evaluated_in_run: int


def rank_positions(run: pl.DataFrame, qq: pl.DataFrame, keys: Keys) -> Ranking:
    """0-based rank of every run row within its query: score descending, then item_id
    descending. `qq`: query_id, n_rel, qi (row of an evaluated query, else null)."""
    n = run.height
    if n == 0:
        return Ranking(np.zeros(0, np.int64), 0, 0, 0, 0)
    starts = _starts_if_in_order(run)
    if starts is not None:  # grouped by query and ranked already: positions are offsets
        groups = (
            pl.DataFrame({QUERY_ID: run[QUERY_ID].gather(starts), "g": np.arange(len(starts))})
            .join(qq, on=QUERY_ID, how="left")
            .sort("g")
        )
        lengths = np.diff(np.append(starts, n))
        group_qi = groups["qi"].cast(pl.Int64).fill_null(-1).to_numpy()
        evaluated = group_qi >= 0
        position = np.arange(n) - np.repeat(starts, lengths)
        position[np.repeat(~evaluated, lengths)] = -1
        return Ranking(
            position=position,
            max_len=int(lengths[evaluated].max()) if evaluated.any() else 0,
            n_run_queries=len(starts),
            n_common=int(groups["n_rel"].is_not_null().sum()),
            n_evaluated_in_run=int(evaluated.sum()),
        )

    table = qq.select(QUERY_ID, "qi").with_row_index("k")
    matched = join_on_keys(run, keys.query, table, query_hash(table[QUERY_ID]), [QUERY_ID])
    n_not_in_qrels = 0
    if matched.height < n:
        known = np.zeros(n, dtype=bool)
        known[matched["row"].to_numpy()] = True
        unknown = keys.query[~known]
        n_not_in_qrels = len(np.unique(unknown))  # distinct hashes: exact unless a collision
    n_common = int((np.bincount(matched["k"].to_numpy()) > 0).sum()) if matched.height else 0
    matched = matched.filter(pl.col("qi").is_not_null())
    position = np.full(n, -1, dtype=np.int64)
    rows = matched["row"].to_numpy().astype(np.int64)
    qi = matched["qi"].to_numpy().astype(np.int64)
    lengths = np.bincount(qi) if len(qi) else np.zeros(0, np.int64)
    max_len = int(lengths.max()) if len(qi) else 0
    ranking = Ranking(
        position, max_len, n_common + n_not_in_qrels, n_common, int((lengths > 0).sum())
    )
    if not len(qi):
        return ranking
    if len(lengths) * max_len <= 4 * len(qi) + _PADDING_ALLOWANCE:
        position[rows] = _segmented_positions(run, rows, qi, lengths, max_len)
    else:  # a few very long queries: a padded matrix would be mostly empty
        position[rows] = _sorted_positions(run, rows, qi)
    return ranking


def _sorted_positions(run: pl.DataFrame, rows: np.ndarray, qi: np.ndarray) -> np.ndarray:
    """Rank within query of run[rows] by one global sort on (qi, score desc, item_id desc)."""
    sub = pl.DataFrame(
        {"qi": qi, SCORE: run[SCORE].gather(rows), ITEM_ID: run[ITEM_ID].gather(rows)}
    )
    order = (
        sub.select(pl.arg_sort_by(["qi", SCORE, ITEM_ID], descending=[False, True, True]))
        .to_series()
        .to_numpy()
    )
    out = np.empty(len(rows), dtype=np.int64)
    out[order] = positions_in_runs(qi[order])
    return out


def _segmented_positions(
    run: pl.DataFrame, rows: np.ndarray, qi: np.ndarray, lengths: np.ndarray, max_len: int
) -> np.ndarray:
    """Rank within query of run[rows] (query index qi): each query's scores are laid out as a
    row of a padded matrix and sorted row-wise; when scores tie, by (-score, -item code)."""
    # rows grouped by query (a radix sort when query indexes fit in 16 bits)
    if len(lengths) <= 1 << 16:
        order = np.argsort(qi.astype(np.uint16), kind="stable")
    else:
        # polars returns its index type (uint32): signed, so padding can be marked with -1
        order = pl.Series(qi).arg_sort().to_numpy().astype(np.int64)
    shape = (len(lengths), max_len)
    if (lengths == max_len).all():  # every query has max_len rows: a plain reshape

        def lay(values: np.ndarray, fill: float) -> np.ndarray:
            return values.reshape(shape)
    else:
        starts = np.cumsum(lengths) - lengths
        cell = np.arange(len(qi)) + np.repeat(np.arange(len(lengths)) * max_len - starts, lengths)

        def lay(values: np.ndarray, fill: float) -> np.ndarray:
            out = np.full(shape[0] * shape[1], fill, dtype=values.dtype)
            out[cell] = values
            return out.reshape(shape)

    scores = lay(-run[SCORE].to_numpy()[rows[order]], np.inf)  # ascending -score; pad last
    perm = np.argsort(scores, axis=1, kind="stable")
    ranked = np.take_along_axis(scores, perm, axis=1)
    if ((ranked[:, 1:] == ranked[:, :-1]) & np.isfinite(ranked[:, 1:])).any():
        # ties: item_id descending = item code descending
        codes = lay(-_item_codes(run[ITEM_ID].gather(rows[order])), 0)
        perm = np.lexsort((codes, scores), axis=1)
    ranked_where = np.take_along_axis(lay(order, -1), perm, axis=1)
    out = np.empty(len(rows), dtype=np.int64)
    if len(rows) == ranked_where.size:  # no padding
        out[ranked_where.ravel()] = np.tile(np.arange(max_len), len(lengths))
    else:
        filled = ranked_where >= 0
        out[ranked_where[filled]] = np.nonzero(filled)[1]
    return out


def _item_codes(items: pl.Series) -> np.ndarray:
    """Rank of each item_id in the lexicographic order of the distinct ids (0-based), through
    64-bit hashes of the ids; exact (a hash collision falls back to ranking the strings)."""
    hashed = pl.DataFrame({"h": items.hash(seed=2)})
    distinct = hashed["h"].unique().to_frame().with_row_index("i")
    which = hashed.join(distinct, on="h", how="left", maintain_order="left")["i"].to_numpy()
    rep = np.empty(distinct.height, dtype=np.int64)
    rep[which[::-1]] = np.arange(len(items) - 1, -1, -1)  # first row holding each hash
    if not (items == items.gather(rep[which])).all():  # two ids share a hash
        return items.rank("dense").cast(pl.Int64).to_numpy()
    code = np.empty(distinct.height, dtype=np.int64)
    code[items.gather(rep).arg_sort().to_numpy()] = np.arange(distinct.height)
    return code[which]


def positions_in_runs(keys: np.ndarray) -> np.ndarray:
    """0-based offset of each element within its run of equal consecutive keys."""
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return np.arange(len(keys)) - np.repeat(first, np.diff(np.append(first, len(keys))))


def _starts_if_in_order(run: pl.DataFrame) -> np.ndarray | None:
    """First row of each query when the run is grouped by query (one block each) with scores
    descending and ties by item_id descending; else None. Lazy queries: polars optimises them
    (an eager select of the same expressions took 3x as long on a 5M-row run)."""
    q, s, d = pl.col(QUERY_ID), pl.col(SCORE), pl.col(ITEM_ID)
    change = (q != q.shift(1)).fill_null(True)
    ordered = change | (s < s.shift(1)) | ((s == s.shift(1)) & (d < d.shift(1)))
    if not run.lazy().select(ordered.all()).collect().item():
        return None
    starts = run.lazy().select(change.arg_true()).collect().to_series().to_numpy()
    starts = starts.astype(np.int64)
    firsts = run[QUERY_ID].gather(starts)
    return starts if firsts.n_unique() == len(starts) else None
