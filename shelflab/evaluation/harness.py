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
    CheckedRun,
    Keys,
    check_run,
    pair_hash,
    query_hash,
    require_columns,
    validate_qrels,
)
from shelflab.errors import ConfigError, InputError
from shelflab.evaluation.metrics import (
    GainMatrix,
    MetricSpec,
    compute,
    parse_metric,
    required_depth,
)
from shelflab.evaluation.ranking import (
    join_on_keys,
    positions_in_runs,
    rank_positions,
)

__all__ = ["EvalResult", "build_gain_matrix", "counts_line", "evaluate"]

# counts() key -> how the counts line names it (what trec_eval's num_q leaves unsaid)
COUNT_PHRASES = {
    "missing_from_run": "missing from the run (scored 0)",
    "without_relevant": "without a relevant item (excluded)",
    "run_ignored": "run queries not in the qrels (ignored)",
}


def counts_line(counts: dict[str, Any]) -> str:
    """What the means counted, one line, as the CLI, the stages and the reports print it:
    'queries: 9 evaluated, 1 missing from the run (scored 0), 0 without a relevant item
    (excluded), 2 run queries not in the qrels (ignored)'. `counts`: EvalResult.counts()."""
    parts = [f"{counts['evaluated']} evaluated"]
    parts += [f"{counts[key]} {phrase}" for key, phrase in COUNT_PHRASES.items()]
    return "queries: " + ", ".join(parts)


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
    # run query ids absent from the qrels that equal a qrels id missing from the run once
    # surrounding whitespace is stripped (a likely formatting slip; ids still compare exactly)
    whitespace_ids: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_evaluated(self) -> int:
        """Alias of n_queries."""
        return self.n_queries

    @property
    def notes(self) -> list[str]:
        """The non-zero counts of counts_line, one phrase each."""
        c = self.counts()
        return [f"{c[key]} {phrase}" for key, phrase in COUNT_PHRASES.items() if c[key]]

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

    def counts(self) -> dict[str, int]:
        """What the evaluation counted, under the names the CLI prints."""
        return {
            "evaluated": self.n_queries,
            "missing_from_run": self.n_missing_from_run,
            "without_relevant": self.n_without_relevant,
            "run_ignored": self.n_not_in_qrels,
            "whitespace_mismatches": len(self.whitespace_ids),
        }

    def mismatch(self) -> str | None:
        """One line saying how the run and the qrels disagree, or None when every evaluated
        query is in the run and every run query is in the qrels."""
        parts = []
        if self.n_missing_from_run:
            missing = COUNT_PHRASES["missing_from_run"]
            parts.append(f"{self.n_missing_from_run} qrels queries {missing}")
        if self.n_not_in_qrels:
            parts.append(f"{self.n_not_in_qrels} {COUNT_PHRASES['run_ignored']}")
        if self.whitespace_ids:
            run_id, qrels_id = self.whitespace_ids[0]
            parts.append(
                f"{len(self.whitespace_ids)} differ only by surrounding whitespace, e.g. run "
                f"{run_id!r} vs qrels {qrels_id!r}"
            )
        return "; ".join(parts) or None


def evaluate(
    qrels: pl.DataFrame,
    run: pl.DataFrame | CheckedRun,
    metrics: Sequence[str] | str,
    relevance_threshold: float = 1.0,
    *,
    qrels_source: str = "qrels",
    run_source: str = "run",
) -> EvalResult:
    """Score `run` against `qrels` on `metrics` (labels such as 'ndcg@10', see
    `shelflab.evaluation.metrics`). `*_source` name the inputs in error messages. `run` may be
    a `CheckedRun` (from `contract.check_run` or `data_io.trec.read_run_checked`): its checks
    and keys are not done again."""
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
    whitespace = []
    if info["n_not_in_qrels"] and info["n_missing_from_run"]:
        whitespace = whitespace_only_differences(run[QUERY_ID], qrels[QUERY_ID])
    return EvalResult(
        per_query=per_query,
        means=means,
        metrics=list(scores),
        relevance_threshold=threshold,
        n_queries=len(info["query_ids"]),
        n_missing_from_run=info["n_missing_from_run"],
        n_without_relevant=info["n_without_relevant"],
        n_not_in_qrels=info["n_not_in_qrels"],
        whitespace_ids=whitespace,
    )


def whitespace_only_differences(run_ids: pl.Series, qrels_ids: pl.Series) -> list[tuple[str, str]]:
    """(run id, qrels id) pairs of ids found on one side only that are equal once surrounding
    whitespace is stripped, in run id order."""
    run_ids, qrels_ids = run_ids.unique(), qrels_ids.unique()
    run_only = run_ids.filter(~run_ids.is_in(qrels_ids.implode()))
    qrels_only = qrels_ids.filter(~qrels_ids.is_in(run_ids.implode()))
    pairs = (
        pl.DataFrame({"run": run_only})
        .with_columns(pl.col("run").str.strip_chars().alias("key"))
        .join(
            pl.DataFrame({"qrels": qrels_only}).with_columns(
                pl.col("qrels").str.strip_chars().alias("key")
            ),
            on="key",
        )
        .sort("run", "qrels")
    )
    return list(zip(pairs["run"].to_list(), pairs["qrels"].to_list(), strict=True))


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


def _validated_run(run: pl.DataFrame | CheckedRun, source: str) -> tuple[pl.DataFrame, Keys]:
    """query_id, item_id, score of a checked run (rank is ignored, so it is not checked), and
    its hashed keys."""
    if isinstance(run, CheckedRun):
        return run.frame.select(QUERY_ID, ITEM_ID, SCORE), run.keys
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
        keys = Keys.of(run)
        if not keys.may_have_duplicates():
            return run, keys
    # the contract's own checks: raise its error, or return the cast run (a hash collision)
    checked = check_run(run.with_columns(pl.lit(0, pl.Int64).alias(RANK)), source)
    return checked.frame.select(QUERY_ID, ITEM_ID, SCORE), checked.keys


def build_gain_matrix(
    qrels: pl.DataFrame,
    run: pl.DataFrame,
    specs: Sequence[MetricSpec],
    threshold: float,
    *,
    qrels_source: str = "qrels",
    run_source: str = "run",
    keys: Keys | None = None,
) -> tuple[GainMatrix, dict[str, Any]]:
    """Build the padded gain matrix of the evaluated queries from checked inputs (as returned
    by contract.validate_qrels / validate_run). Returns the matrix and a dict with query_ids
    (the matrix's row order) and the policy counts."""
    keys = Keys.of(run) if keys is None else keys
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

    ranking = rank_positions(run, qq, keys)
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
        pos_keys = pair_hash(query_hash(positives[QUERY_ID]), positives[ITEM_ID])
        hits = join_on_keys(run, keys.pair, positives, pos_keys, [QUERY_ID, ITEM_ID])
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
        ideal[qi_pos, positions_in_runs(qi_pos)] = ranked[GRADE].to_numpy()

    matrix = GainMatrix(gains=gains, ideal=ideal, n_relevant=n_rel, threshold=threshold)
    return matrix, info
