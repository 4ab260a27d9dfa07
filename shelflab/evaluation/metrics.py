"""Ranking metrics, one function per metric, computed on a padded gain matrix.

Modelled on ranx: a metric is a pure function of the judged ranking, looked up by name in
`METRICS`; `parse_metric("ndcg@10")` turns a label into a name and a cutoff. The functions know
nothing of models, files or polars: they take a `GainMatrix` (built once per run by
`shelflab.evaluation.harness`) and return one float64 score per query.

Definitions (trec_eval's, so numbers can be checked against trec_eval / pytrec_eval):

- A ranked item is *relevant* when its grade >= the relevance threshold (trec_eval's ``-l``,
  default 1). Unjudged items have grade 0. Grades are floats.
- ``ndcg@K``: DCG@K / IDCG@K with gain = grade and discount 1 / log2(rank + 1); the ideal
  ranking is built from *all* judged items of the query (not only the retrieved ones), cut at K.
  Grades <= 0 give no gain (trec_eval clamps negative grades the same way). The gain does not
  depend on the threshold (trec_eval's ``ndcg_cut``). ``ndcg`` without K: no cutoff.
- ``ndcg_burges@K``: the same with gain 2^grade - 1 (Burges et al.; ranx's ``ndcg_burges``).
- ``precision@K``: relevant items in the top K divided by K, even when fewer than K items were
  retrieved (trec_eval's ``P_K``).
- ``recall@K``: relevant items in the top K divided by the number of relevant judged items.
- ``hit@K``: 1 when at least one relevant item is in the top K (trec_eval's ``success_K``).
- ``mrr`` / ``mrr@K``: 1 / rank of the first relevant item (0 if none, or none in the top K).
- ``map`` / ``map@K``: sum of precision@rank over the relevant items retrieved (at rank <= K)
  divided by the total number of relevant judged items (trec_eval's ``map`` / ``map_cut_K``).
- ``r-precision``: relevant items in the top R divided by R, R = number of relevant judged
  items (trec_eval's ``Rprec``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from shelflab.errors import ConfigError

__all__ = [
    "METRICS",
    "GainMatrix",
    "MetricFn",
    "MetricSpec",
    "compute",
    "hit",
    "map_",
    "mrr",
    "ndcg",
    "ndcg_burges",
    "parse_metric",
    "precision",
    "r_precision",
    "recall",
    "required_depth",
]


@dataclass(frozen=True, eq=False)
class GainMatrix:
    """A judged run as dense arrays, one row per evaluated query.

    gains:      (n_queries, depth) grade of the item at each rank (column 0 = rank 1); 0 for an
                unjudged item or past the end of the query's run. Negative grades are stored as
                0 (they give no gain and are never relevant).
    ideal:      (n_queries, width) grades > 0 of *all* judged items of the query, sorted
                descending, zero padded (the ideal ranking, for nDCG's normaliser).
    n_relevant: (n_queries,) number of judged items with grade >= threshold.
    threshold:  relevance threshold for the binary metrics (> 0).
    """

    gains: np.ndarray
    ideal: np.ndarray
    n_relevant: np.ndarray
    threshold: float = 1.0

    def __post_init__(self) -> None:
        if self.gains.ndim != 2 or self.ideal.ndim != 2 or self.n_relevant.ndim != 1:
            raise ValueError("gains and ideal must be 2-D, n_relevant 1-D")
        n = self.gains.shape[0]
        if self.ideal.shape[0] != n or self.n_relevant.shape[0] != n:
            raise ValueError("gains, ideal and n_relevant must have one row per query")
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise ConfigError(
                f"relevance threshold must be a finite number > 0, got {self.threshold}"
            )

    @classmethod
    def from_lists(
        cls,
        ranked_grades: Sequence[Sequence[float]],
        judged_grades: Sequence[Sequence[float]],
        threshold: float = 1.0,
    ) -> GainMatrix:
        """Build from plain lists, one entry per query: the grades of the run's items in rank
        order (0 for unjudged) and the grades of all judged items of the query (any order).
        Meant for tests and small examples; the harness builds the arrays directly."""
        if len(ranked_grades) != len(judged_grades):
            raise ValueError("ranked_grades and judged_grades need one entry per query")
        n = len(ranked_grades)
        depth = max([len(r) for r in ranked_grades] + [1])
        gains = np.zeros((n, depth))
        for i, row in enumerate(ranked_grades):
            gains[i, : len(row)] = np.maximum(np.asarray(row, dtype=np.float64), 0.0)
        positives = [sorted((g for g in row if g > 0), reverse=True) for row in judged_grades]
        ideal = np.zeros((n, max([len(p) for p in positives] + [1])))
        for i, row in enumerate(positives):
            ideal[i, : len(row)] = row
        n_rel = np.array([sum(g >= threshold for g in row) for row in judged_grades], np.int64)
        return cls(gains=gains, ideal=ideal, n_relevant=n_rel, threshold=threshold)

    @property
    def n_queries(self) -> int:
        return int(self.gains.shape[0])

    @property
    def depth(self) -> int:
        return int(self.gains.shape[1])

    @cached_property
    def relevant(self) -> np.ndarray:
        """(n_queries, depth) bool: the item at this rank is relevant."""
        return self.gains >= self.threshold

    @cached_property
    def cum_relevant(self) -> np.ndarray:
        """(n_queries, depth) int32: relevant items at ranks 1..r."""
        return np.cumsum(self.relevant, axis=1, dtype=np.int32)

    def hits_at(self, k: int | None) -> np.ndarray:
        """Relevant items in the top k (all retrieved when k is None)."""
        kk = self.depth if k is None else min(k, self.depth)
        return self.cum_relevant[:, kk - 1].astype(np.float64)


MetricFn = Callable[[GainMatrix, int | None], np.ndarray]

# cutoff rules: "required" (name@K only), "optional" (name or name@K), "none" (name only)
_CUTOFF: dict[str, str] = {}
METRICS: dict[str, MetricFn] = {}


def _register(name: str, cutoff: str) -> Callable[[MetricFn], MetricFn]:
    def deco(fn: MetricFn) -> MetricFn:
        METRICS[name] = fn
        _CUTOFF[name] = cutoff
        return fn

    return deco


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _ndcg(m: GainMatrix, k: int | None, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    run_k = m.depth if k is None else min(k, m.depth)
    ideal_k = m.ideal.shape[1] if k is None else min(k, m.ideal.shape[1])
    dcg = gain(m.gains[:, :run_k]) @ _discounts(run_k)
    idcg = gain(m.ideal[:, :ideal_k]) @ _discounts(ideal_k)
    out = np.zeros(m.n_queries)
    np.divide(dcg, idcg, out=out, where=idcg > 0)
    return out


@_register("ndcg", "optional")
def ndcg(m: GainMatrix, k: int | None = None) -> np.ndarray:
    """nDCG(@k), gain = grade (Järvelin & Kekäläinen; trec_eval ndcg / ndcg_cut)."""
    return _ndcg(m, k, lambda g: g)


@_register("ndcg_burges", "optional")
def ndcg_burges(m: GainMatrix, k: int | None = None) -> np.ndarray:
    """nDCG(@k), gain = 2^grade - 1 (Burges et al. 2005). A query whose top grade would
    overflow a float (2^1024) has both DCG and IDCG scaled by 2^-top: the same ratio, no NaN."""
    top = m.ideal.max(axis=1, initial=0.0)[:, None]
    shift = np.where(top > 512, top, 0.0)  # only where needed: other queries keep exact sums
    return _ndcg(m, k, lambda g: np.exp2(g - shift) - np.exp2(-shift))


@_register("precision", "required")
def precision(m: GainMatrix, k: int | None) -> np.ndarray:
    """Relevant in the top k / k (trec_eval P_k)."""
    if k is None:
        raise ValueError("precision needs a cutoff k")
    return m.hits_at(k) / k


@_register("recall", "required")
def recall(m: GainMatrix, k: int | None) -> np.ndarray:
    """Relevant in the top k / number of relevant judged items."""
    return _safe_div(m.hits_at(k), m.n_relevant)


@_register("hit", "required")
def hit(m: GainMatrix, k: int | None) -> np.ndarray:
    """1 if any relevant item is in the top k (trec_eval success_k)."""
    return (m.hits_at(k) > 0).astype(np.float64)


@_register("mrr", "optional")
def mrr(m: GainMatrix, k: int | None = None) -> np.ndarray:
    """Reciprocal rank of the first relevant item (within the top k)."""
    rel = m.relevant if k is None else m.relevant[:, : min(k, m.depth)]
    first = rel.argmax(axis=1)
    return np.where(rel.any(axis=1), 1.0 / (first + 1.0), 0.0)


@_register("map", "optional")
def map_(m: GainMatrix, k: int | None = None) -> np.ndarray:
    """Average precision (trec_eval map / map_cut_k): divided by *all* relevant judged items."""
    kk = m.depth if k is None else min(k, m.depth)
    # precision at the relevant ranks only: a few per query, not the whole matrix
    rows, cols = np.nonzero(m.relevant[:, :kk])
    prec = m.cum_relevant[rows, cols] / (cols + 1.0)
    return _safe_div(np.bincount(rows, prec, minlength=m.n_queries), m.n_relevant)


@_register("r-precision", "none")
def r_precision(m: GainMatrix, k: int | None = None) -> np.ndarray:
    """Relevant in the top R / R, R = number of relevant judged items (trec_eval Rprec)."""
    r = m.n_relevant
    col = np.clip(r, 1, m.depth) - 1
    hits = np.take_along_axis(m.cum_relevant, col[:, None], axis=1)[:, 0].astype(np.float64)
    # when R exceeds the matrix depth every retrieved item is already in the top R
    return _safe_div(np.where(r > 0, hits, 0.0), r)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(len(num))
    np.divide(num, den, out=out, where=den > 0)
    return out


class MetricSpec(NamedTuple):
    """A parsed metric label: `name` is a key of METRICS, `k` the cutoff or None."""

    name: str
    k: int | None

    @property
    def label(self) -> str:
        return self.name if self.k is None else f"{self.name}@{self.k}"


def parse_metric(label: str) -> MetricSpec:
    """'ndcg@10' -> MetricSpec('ndcg', 10); 'mrr' -> MetricSpec('mrr', None).

    Raises ConfigError naming the known metrics for an unknown name, and for a missing, extra
    or non-positive cutoff."""
    if not isinstance(label, str):
        raise ConfigError(f"metric must be a string like 'ndcg@10', got {label!r}")
    text = label.strip().lower()
    name, sep, cut = text.partition("@")
    if name not in METRICS:
        raise ConfigError(f"unknown metric {label!r} (expected one of: {known_metrics()})")
    k: int | None = None
    if sep:
        if not (cut.isascii() and cut.isdigit()) or int(cut) < 1:  # not '１０' or '²'
            raise ConfigError(
                f"metric {label!r}: cutoff must be a positive integer, e.g. {name}@10"
            )
        k = int(cut)
    rule = _CUTOFF[name]
    if rule == "required" and k is None:
        raise ConfigError(f"metric {label!r} needs a cutoff, e.g. {name}@10")
    if rule == "none" and k is not None:
        raise ConfigError(f"metric {name!r} takes no cutoff (got {label!r})")
    return MetricSpec(name, k)


def known_metrics() -> str:
    forms = {"required": "{}@K", "optional": "{}, {}@K", "none": "{}"}
    return ", ".join(forms[_CUTOFF[n]].format(n, n) for n in METRICS)


def required_depth(specs: Iterable[MetricSpec], max_len: int, max_relevant: int) -> int:
    """Columns of the gain matrix the metrics need: the largest cutoff, or the longest run when
    a metric has no cutoff (r-precision needs up to the largest number of relevant items)."""
    depth = 0
    for spec in specs:
        if spec.name == "r-precision":
            depth = max(depth, min(max_relevant, max_len))
        elif spec.k is None:
            depth = max(depth, max_len)
        else:
            depth = max(depth, min(spec.k, max_len))
    return max(depth, 1)


def compute(m: GainMatrix, metrics: Iterable[str | MetricSpec]) -> dict[str, np.ndarray]:
    """Per-query scores for each metric label, in the order given (duplicates collapsed)."""
    out: dict[str, np.ndarray] = {}
    for item in metrics:
        spec = item if isinstance(item, MetricSpec) else parse_metric(item)
        if spec.label not in out:
            out[spec.label] = METRICS[spec.name](m, spec.k)
    return out
