"""Evaluate one run against qrels: polars in, per-query scores and means out.

Policy (what is evaluated, what is counted):

- Ordering: each query's run is ordered by score descending, ties broken by item_id descending
  (trec_eval's rule; `shelflab.contract.add_rank` writes ranks the same way). A `rank` column,
  if any, is ignored.
- Evaluated queries: the qrels queries with at least one relevant item (grade >= threshold).
  Such a query absent from the run scores 0 on every metric (like ranx's `make_comparable` or
  trec_eval -c) and is counted in `n_missing_from_run`.
- Qrels queries without any relevant item are excluded (every metric would be 0/0) and counted
  in `n_without_relevant`.
- Run queries absent from the qrels are ignored and counted in `n_not_in_qrels`.
- A run and qrels with no query in common raise InputError naming both sources.

Agreement with reference implementations (tests/evaluation/test_eval_agreement.py checks it to
1e-9 on real Home Depot runs):
- trec_eval / pytrec_eval: same numbers, with two input differences. trec_eval keeps scores as C
  floats (32 bits): scores that differ only beyond float32 precision tie there (and are then
  ordered by item_id) but not here, where the float64 scores decide. pytrec_eval accepts integer
  grades only (use 100 x grade and relevance_level=100 for hundredth grades).
- ranx: ties are ordered by an unstable argsort (no defined order), and at a relevance level
  above 1 its nDCG drops judgments below the level, where trec_eval (and we) keep their gain.
  ranx also takes integer grades only.

Inputs are checked with `shelflab.contract` (NaN/inf scores or grades, duplicate
(query_id, item_id) in the run, conflicting grades in the qrels, missing columns). For a large run
that is already well formed a few vectorised checks stand in for `contract.validate_run`; any
doubt falls back to it, so errors are exactly the contract's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from shelflab.contract import (
    GRADE,
    ITEM_ID,
    QUERY_ID,
    RANK,
    SCORE,
    require_columns,
    validate_qrels,
    validate_run,
)
from shelflab.errors import ConfigError, InputError
from shelflab.evaluation.metrics import (
    GainMatrix,
    MetricSpec,
    compute,
    parse_metric,
    required_depth,
)

__all__ = ["EvalResult", "build_gain_matrix", "evaluate"]


@dataclass(frozen=True)
class EvalResult:
    """per_query: query_id (str) + one Float64 column per metric, one row per evaluated query,
    sorted by query_id. means: metric -> mean over the evaluated queries."""

    per_query: pl.DataFrame
    means: dict[str, float]
    metrics: list[str]
    relevance_threshold: float
    n_queries: int  # evaluated (rows of per_query)
    n_missing_from_run: int  # evaluated queries absent from the run (scored 0)
    n_without_relevant: int  # qrels queries with no relevant item (excluded)
    n_not_in_qrels: int  # run queries absent from the qrels (ignored)
    notes: list[str] = field(default_factory=list)

    @property
    def n_evaluated(self) -> int:
        """Alias of n_queries."""
        return self.n_queries

    def summary(self) -> dict[str, Any]:
        """JSON-friendly means and counts (for logs and the registry)."""
        return {
            "metrics": dict(self.means),
            "relevance_threshold": self.relevance_threshold,
            "n_queries": self.n_queries,
            "n_missing_from_run": self.n_missing_from_run,
            "n_without_relevant": self.n_without_relevant,
            "n_not_in_qrels": self.n_not_in_qrels,
        }


def evaluate(
    qrels: pl.DataFrame,
    run: pl.DataFrame,
    metrics: Sequence[str] | str,
    relevance_threshold: float = 1.0,
    *,
    qrels_source: str = "qrels",
    run_source: str = "run",
) -> EvalResult:
    """Score `run` against `qrels` on `metrics` (labels such as 'ndcg@10', see
    `shelflab.evaluation.metrics`). `*_source` name the inputs in error messages."""
    specs = _parse_metrics(metrics)
    threshold = _check_threshold(relevance_threshold)
    qrels = validate_qrels(qrels, qrels_source)
    run, keys = _validated_run(run, run_source)
    matrix, info = build_gain_matrix(
        qrels, run, specs, threshold, qrels_source=qrels_source, run_source=run_source, keys=keys
    )
    scores = compute(matrix, specs)
    per_query = pl.DataFrame(
        [pl.Series(QUERY_ID, info["query_ids"], pl.String)]
        + [pl.Series(label, values, pl.Float64) for label, values in scores.items()]
    )
    means = {label: float(values.mean()) for label, values in scores.items()}
    notes = []
    if info["n_missing_from_run"]:
        notes.append(f"{info['n_missing_from_run']} evaluated queries absent from the run scored 0")
    if info["n_without_relevant"]:
        notes.append(
            f"{info['n_without_relevant']} qrels queries without a relevant item "
            f"(grade >= {threshold:g}) excluded"
        )
    if info["n_not_in_qrels"]:
        notes.append(f"{info['n_not_in_qrels']} run queries absent from the qrels ignored")
    return EvalResult(
        per_query=per_query,
        means=means,
        metrics=list(scores),
        relevance_threshold=threshold,
        n_queries=len(info["query_ids"]),
        n_missing_from_run=info["n_missing_from_run"],
        n_without_relevant=info["n_without_relevant"],
        n_not_in_qrels=info["n_not_in_qrels"],
        notes=notes,
    )


def _parse_metrics(metrics: Sequence[str] | str) -> list[MetricSpec]:
    labels = [metrics] if isinstance(metrics, str) else list(metrics)
    if not labels:
        raise ConfigError("no metric requested (e.g. ['ndcg@10', 'recall@100'])")
    specs: list[MetricSpec] = []
    for label in labels:
        spec = parse_metric(label)
        if spec not in specs:
            specs.append(spec)
    return specs


def _check_threshold(value: float) -> float:
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"relevance_threshold must be a number, got {value!r}") from None
    if not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(
            "relevance_threshold must be a finite number > 0 (grade 0 = not relevant), "
            f"got {value!r}"
        )
    return threshold


def _validated_run(run: pl.DataFrame, source: str) -> tuple[pl.DataFrame, _Keys]:
    """query_id, item_id, score of a checked run (rank is ignored, so it is not checked), and
    its hashed keys."""
    if not isinstance(run, pl.DataFrame):
        raise InputError(f"expected a polars DataFrame, got {type(run).__name__}", path=source)
    require_columns(run, [QUERY_ID, ITEM_ID, SCORE], source)
    run = run.select(QUERY_ID, ITEM_ID, SCORE)
    well_typed = (
        run.schema[QUERY_ID] == pl.String
        and run.schema[ITEM_ID] == pl.String
        and run.schema[SCORE] == pl.Float64
        and sum(run.null_count().row(0)) == 0
        and bool(run[SCORE].is_finite().all())
    )
    if well_typed:
        keys = _Keys.of(run)
        if not keys.may_have_duplicates():
            return run, keys
    # the contract's own checks: raise its error, or return the cast run (a hash collision)
    checked = validate_run(run.with_columns(pl.lit(0, pl.Int64).alias(RANK)), source)
    run = checked.select(QUERY_ID, ITEM_ID, SCORE)
    return run, _Keys.of(run)


_MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class _Keys:
    """64-bit hashes of a run's query_id and (query_id, item_id): integer keys for joins and
    the duplicate check. A hash match is always confirmed on the strings."""

    query: np.ndarray
    pair: np.ndarray

    @classmethod
    def of(cls, df: pl.DataFrame) -> _Keys:
        query = df[QUERY_ID].hash(seed=1).to_numpy()
        return cls(query, _pair_key(query, df[ITEM_ID]))

    def may_have_duplicates(self) -> bool:
        """False only when no (query_id, item_id) repeats (True may be a collision)."""
        if len(self.pair) < 2:
            return False
        ordered = np.sort(self.pair)
        return bool((ordered[1:] == ordered[:-1]).any())


def _pair_key(query_hash: np.ndarray, items: pl.Series) -> np.ndarray:
    return (query_hash * _MIX) ^ items.hash(seed=2).to_numpy()


def _join_on_keys(
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


def build_gain_matrix(
    qrels: pl.DataFrame,
    run: pl.DataFrame,
    specs: Sequence[MetricSpec],
    threshold: float,
    *,
    qrels_source: str = "qrels",
    run_source: str = "run",
    keys: _Keys | None = None,
) -> tuple[GainMatrix, dict[str, Any]]:
    """Build the padded gain matrix of the evaluated queries from checked inputs (as returned
    by contract.validate_qrels / validate_run). Returns the matrix and a dict with query_ids
    (the matrix's row order) and the policy counts."""
    keys = _Keys.of(run) if keys is None else keys
    # every qrels query with its number of relevant items; evaluated ones get a row `qi`
    qq = (
        qrels.group_by(QUERY_ID)
        .agg((pl.col(GRADE) >= threshold).sum().cast(pl.Int64).alias("n_rel"))
        .sort(QUERY_ID)
    )
    evaluated = qq.filter(pl.col("n_rel") > 0)
    n_eval = evaluated.height
    qi_table = evaluated.select(QUERY_ID).with_row_index("qi")
    qq = qq.join(qi_table, on=QUERY_ID, how="left")

    ranking = _rank_positions(run, qq, keys)
    n_run_queries = ranking.n_run_queries
    if ranking.n_common == 0:
        raise InputError(
            f"no query_id in common between {run_source} ({n_run_queries} queries) and "
            f"{qrels_source} ({qq.height} queries)",
            expected="the run to answer queries of the qrels",
        )
    if n_eval == 0:
        raise InputError(
            f"no query has a relevant item (grade >= {threshold:g})",
            path=qrels_source,
            expected="at least one judged item with grade >= the relevance threshold",
        )
    info: dict[str, Any] = {
        "query_ids": evaluated[QUERY_ID].to_list(),
        "n_missing_from_run": n_eval - ranking.n_evaluated_in_run,
        "n_without_relevant": qq.height - n_eval,
        "n_not_in_qrels": n_run_queries - ranking.n_common,
    }
    n_rel = evaluated["n_rel"].to_numpy().astype(np.int64)
    depth = required_depth(specs, ranking.max_len, int(n_rel.max()))

    # judged items with a positive grade of evaluated queries: the only non-zero gains
    positives = (
        qrels.filter(pl.col(GRADE) > 0)
        .join(qi_table, on=QUERY_ID, how="inner")
        .select(QUERY_ID, ITEM_ID, GRADE, "qi")
    )
    gains = np.zeros((n_eval, depth))
    if positives.height:
        pos_keys = _pair_key(positives[QUERY_ID].hash(seed=1).to_numpy(), positives[ITEM_ID])
        hits = _join_on_keys(run, keys.pair, positives, pos_keys, [QUERY_ID, ITEM_ID])
        if hits.height:
            pos = ranking.position[hits["row"].to_numpy()]
            keep = pos < depth
            qi = hits["qi"].to_numpy().astype(np.int64)
            gains[qi[keep], pos[keep]] = hits[GRADE].to_numpy()[keep]

    # ideal ranking: positive grades of all judged items, descending
    ranked = positives.select("qi", GRADE).sort(["qi", GRADE], descending=[False, True])
    qi_pos = ranked["qi"].to_numpy().astype(np.int64)
    width = max(int(np.bincount(qi_pos, minlength=1).max()), 1)
    ideal = np.zeros((n_eval, width))
    if len(qi_pos):
        ideal[qi_pos, _positions_in_runs(qi_pos)] = ranked[GRADE].to_numpy()

    matrix = GainMatrix(gains=gains, ideal=ideal, n_relevant=n_rel, threshold=threshold)
    return matrix, info


# extra cells a padded (query x rank) score matrix may hold beyond 4 per run row before the
# row-wise sort gives way to one global sort (runs with a few very long queries)
_PADDING_ALLOWANCE = 1_000_000


@dataclass(frozen=True)
class _Ranking:
    position: np.ndarray  # per run row: 0-based rank within its query (-1: not evaluated)
    max_len: int  # longest run of an evaluated query
    n_run_queries: int
    n_common: int  # run queries present in the qrels
    n_evaluated_in_run: int


def _rank_positions(run: pl.DataFrame, qq: pl.DataFrame, keys: _Keys) -> _Ranking:
    """0-based rank of every run row within its query: score descending, then item_id
    descending. `qq`: query_id, n_rel, qi (row of an evaluated query, else null)."""
    n = run.height
    if n == 0:
        return _Ranking(np.zeros(0, np.int64), 0, 0, 0, 0)
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
        return _Ranking(
            position=position,
            max_len=int(lengths[evaluated].max()) if evaluated.any() else 0,
            n_run_queries=len(starts),
            n_common=int(groups["n_rel"].is_not_null().sum()),
            n_evaluated_in_run=int(evaluated.sum()),
        )

    table = qq.select(QUERY_ID, "qi").with_row_index("k")
    matched = _join_on_keys(
        run, keys.query, table, table[QUERY_ID].hash(seed=1).to_numpy(), [QUERY_ID]
    )
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
    ranking = _Ranking(
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
    out[order] = _positions_in_runs(qi[order])
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
        order = pl.Series(qi).arg_sort().to_numpy()
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


def _positions_in_runs(keys: np.ndarray) -> np.ndarray:
    """0-based offset of each element within its run of equal consecutive keys."""
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return np.arange(len(keys)) - np.repeat(first, np.diff(np.append(first, len(keys))))


def _starts_if_in_order(run: pl.DataFrame) -> np.ndarray | None:
    """First row of each query when the run is grouped by query (one block each) with scores
    descending and ties by item_id descending; else None."""
    q, s, d = pl.col(QUERY_ID), pl.col(SCORE), pl.col(ITEM_ID)
    change = (q != q.shift(1)).fill_null(True)
    ordered = change | (s < s.shift(1)) | ((s == s.shift(1)) & (d < d.shift(1)))
    flags = run.select(change.alias("change"), ordered.all().alias("ordered"))
    if not flags["ordered"][0]:
        return None
    starts = np.flatnonzero(flags["change"].to_numpy())
    firsts = run[QUERY_ID].gather(starts)
    return starts if firsts.n_unique() == len(starts) else None
