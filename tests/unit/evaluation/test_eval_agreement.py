"""Agreement with pytrec_eval (trec_eval) and ranx on real judgments (Home Depot, see conftest).

What differs between the three and how the comparison deals with it:
- pytrec_eval and ranx only take integer grades (pytrec_eval: "Expected relevance to be
  integer"; ranx stores grades as int64). Home Depot grades are hundredths (1.33 ...), so they
  get 100 x grade as integers with relevance level 100: binary metrics see the same relevant
  set and linear-gain nDCG is scale invariant, so our float-graded numbers must match exactly.
  nDCG-Burges (2^g - 1) is not scale invariant: it is compared on integer grades.
- Ties: trec_eval orders tied scores by item_id descending, as we do, so pytrec_eval gets the
  raw (heavily tied) runs. ranx sorts tied scores with an unstable argsort (no defined order),
  so ranx gets the same ranking with distinct scores (score = -rank).
- Relevance threshold and nDCG: trec_eval's nDCG gains do not depend on the threshold (-l);
  ranx drops judgments below its threshold before computing nDCG. Equal at threshold 1 on
  integer grades; at threshold 2 ranx equals ours on qrels without the grade-1 judgments.
- Queries: trec_eval reports only queries present in the run; we score evaluated queries absent
  from the run 0 (trec_eval -c, ranx make_comparable). Queries whose judgments hold no relevant
  item are excluded by us; the reference libraries get the evaluated queries only.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import pytrec_eval
from numba.typed import List as TypedList
from ranx import evaluate as ranx_evaluate

from shelflab.contract import add_rank
from shelflab.evaluation.harness import evaluate

TOL = 1e-9
# ranx's kernels cast hashed ids; harmless here (ids are small integers)
pytestmark = pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaTypeSafetyWarning")

# ours -> pytrec_eval measure
PYTREC = {
    "ndcg@10": "ndcg_cut_10",
    "ndcg@100": "ndcg_cut_100",
    "ndcg": "ndcg",
    "precision@10": "P_10",
    "recall@10": "recall_10",
    "recall@100": "recall_100",
    "mrr": "recip_rank",
    "map": "map",
    "map@10": "map_cut_10",
    "map@100": "map_cut_100",
    "r-precision": "Rprec",
    "hit@1": "success_1",
    "hit@10": "success_10",
}
# ours -> ranx metric, {level} = relevance level for the binary metrics
RANX = {
    "ndcg@10": "ndcg@10",
    "ndcg@100": "ndcg@100",
    "ndcg": "ndcg",
    "precision@10": "precision@10-l{level}",
    "recall@10": "recall@10-l{level}",
    "recall@100": "recall@100-l{level}",
    "mrr": "mrr-l{level}",
    "mrr@10": "mrr@10-l{level}",
    "map": "map-l{level}",
    "map@10": "map@10-l{level}",
    "map@100": "map@100-l{level}",
    "r-precision": "r-precision-l{level}",
    "hit@10": "hit_rate@10-l{level}",
}


def _pytrec_measures(names):
    return {
        m.replace("_cut_", "_cut.")
        .replace("P_", "P.")
        .replace("recall_", "recall.")
        .replace("success_", "success.")
        for m in names
    }


def _nested(df: pl.DataFrame, value: str, cast=float) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for q, d, v in df.select("query_id", "item_id", value).iter_rows():
        out.setdefault(q, {})[d] = cast(v)
    return out


def _with_int_grades(qrels: pl.DataFrame, scale: int) -> pl.DataFrame:
    return qrels.with_columns((pl.col("grade") * scale).round().cast(pl.Int64).alias("g"))


def _pytrec(qrels_int: pl.DataFrame, run: pl.DataFrame, names, level: int):
    ev = pytrec_eval.RelevanceEvaluator(
        _nested(qrels_int, "g", int), _pytrec_measures(names), relevance_level=level
    )
    return ev.evaluate(_nested(run, "score"))


def _ranx(qrels_int: pl.DataFrame, run: pl.DataFrame, evaluated: list[str], metrics: list[str]):
    """Per-query scores of ranx's metric kernels (ranx.evaluate on its typed-list form: one
    [doc, value] float64 array per query, judgments sorted by grade and results by score,
    descending; what ranx's Qrels/Run build, minus their ~40 s of first-time JIT compilation).
    The run keeps our order (score desc, item_id desc) with distinct scores (-rank)."""
    doc_code: dict[str, int] = {}

    def arrays(df: pl.DataFrame, value: str) -> TypedList:
        grouped = {q: ([], []) for q in evaluated}
        for q, d, v in df.select("query_id", "item_id", value).iter_rows():
            grouped[q][0].append(doc_code.setdefault(d, len(doc_code)))
            grouped[q][1].append(float(v))
        out = []
        for q in evaluated:
            ids, values = grouped[q]
            a = np.array([ids, values], dtype=np.float64).T.reshape(-1, 2)
            out.append(a[np.argsort(-a[:, 1], kind="stable")])
        return TypedList(out)

    qrels_int = qrels_int.filter(pl.col("query_id").is_in(evaluated))
    ranked = add_rank(run.filter(pl.col("query_id").is_in(evaluated)))
    ranked = ranked.with_columns((-pl.col("rank")).cast(pl.Float64).alias("score"))
    # ranx 0.3.21 fails on a single metric with return_mean=False: always ask for two
    asked = metrics if len(metrics) > 1 else [*metrics, "mrr"]
    scores = ranx_evaluate(
        arrays(qrels_int, "g"), arrays(ranked, "score"), asked, return_mean=False, threads=1
    )
    return {m: dict(zip(evaluated, scores[m], strict=True)) for m in metrics}


def _compare(ours: pl.DataFrame, ref: dict[str, dict[str, float]], mapping: dict[str, str]):
    worst = 0.0
    checked = 0
    for row in ours.iter_rows(named=True):
        q = row["query_id"]
        for mine, theirs in mapping.items():
            expected = ref[theirs][q] if theirs in ref else ref[q][theirs]
            worst = max(worst, abs(row[mine] - expected))
            checked += 1
            assert row[mine] == pytest.approx(expected, abs=TOL), (q, mine, theirs)
    assert checked > 0
    return worst


@pytest.fixture(scope="module", params=["run_idf", "run_overlap"])
def case(request, hd_sample):
    qrels, run = hd_sample["qrels"], hd_sample[request.param]
    res = evaluate(qrels, run, sorted(set(PYTREC) | set(RANX)), relevance_threshold=1.0)
    return qrels, run, res


def test_sample_is_substantial(case):
    _, run, res = case
    assert res.n_queries >= 250
    assert run["query_id"].n_unique() >= 250
    assert res.n_missing_from_run > 0  # search terms made only of stopwords: scored 0
    assert 0.05 < res.means["ndcg@10"] < 0.9
    assert res.means["recall@100"] > res.means["recall@10"] > 0


def test_float_grades_match_pytrec_eval(case):
    qrels, run, res = case
    ref = _pytrec(_with_int_grades(qrels, 100), run, PYTREC.values(), level=100)
    in_run = res.per_query.filter(pl.col("query_id").is_in(list(ref)))
    missing = res.per_query.filter(~pl.col("query_id").is_in(list(ref)))
    assert in_run.height >= 250
    _compare(in_run, ref, PYTREC)
    assert missing.height == res.n_missing_from_run
    assert (missing.drop("query_id").to_numpy() == 0).all()


def test_float_grades_match_ranx(case):
    qrels, run, res = case
    evaluated = res.per_query["query_id"].to_list()
    metrics = {k: v.format(level=100) for k, v in RANX.items()}
    ref = _ranx(_with_int_grades(qrels, 100), run, evaluated, list(metrics.values()))
    _compare(res.per_query, ref, metrics)


@pytest.mark.parametrize("level", [1, 2])
def test_integer_grades_match_both(hd_sample, level):
    """Grades rounded to 0/1/2: ours (same float run) = pytrec_eval = ranx, incl. nDCG-Burges."""
    qrels = _with_int_grades(hd_sample["qrels"], 1).select(
        "query_id", "item_id", pl.col("g").cast(pl.Float64).alias("grade"), "g"
    )
    run = hd_sample["run_idf"]
    labels = sorted(set(PYTREC) | set(RANX) | {"ndcg_burges@10"})
    res = evaluate(qrels.drop("g"), run, labels, relevance_threshold=level)
    assert res.n_queries >= 100

    ref = _pytrec(qrels, run, PYTREC.values(), level=level)
    _compare(res.per_query.filter(pl.col("query_id").is_in(list(ref))), ref, PYTREC)

    evaluated = res.per_query["query_id"].to_list()
    binary = {k: v.format(level=level) for k, v in RANX.items() if "{level}" in v}
    if level == 1:  # ranx nDCG ignores judgments below its level: equal at level 1 only
        binary |= {"ndcg@10": "ndcg@10", "ndcg": "ndcg", "ndcg_burges@10": "ndcg_burges@10"}
    ref = _ranx(qrels, run, evaluated, list(binary.values()))
    _compare(res.per_query, ref, binary)


def test_ranx_ndcg_drops_judgments_below_its_level(hd_sample):
    """Documented difference: at level 2, ranx's nDCG equals ours on qrels without grade-1."""
    qrels = _with_int_grades(hd_sample["qrels"], 1).select(
        "query_id", "item_id", pl.col("g").cast(pl.Float64).alias("grade"), "g"
    )
    run = hd_sample["run_idf"]
    ours = evaluate(qrels.drop("g"), run, ["ndcg@10"], relevance_threshold=2)
    evaluated = ours.per_query["query_id"].to_list()
    ref = _ranx(qrels, run, evaluated, ["ndcg@10-l2"])
    diff = ours.per_query.with_columns(
        pl.col("query_id").replace_strict(ref["ndcg@10-l2"]).alias("ranx")
    ).filter((pl.col("ndcg@10") - pl.col("ranx")).abs() > TOL)
    assert diff.height > 0  # trec_eval-style nDCG still credits grade-1 items

    top_only = qrels.filter(pl.col("g") >= 2).drop("g")
    filtered = evaluate(top_only, run, ["ndcg@10"], relevance_threshold=2)
    _compare(filtered.per_query, ref, {"ndcg@10": "ndcg@10-l2"})


def test_scale_invariance_of_linear_ndcg(hd_sample):
    qrels, run = hd_sample["qrels"], hd_sample["run_idf"]
    a = evaluate(qrels, run, ["ndcg@10", "map"], relevance_threshold=1.0).per_query
    scaled = qrels.with_columns(pl.col("grade") * 3)
    b = evaluate(scaled, run, ["ndcg@10", "map"], relevance_threshold=3.0).per_query
    assert (a["ndcg@10"] - b["ndcg@10"]).abs().max() < 1e-12
    assert a["map"].equals(b["map"])
