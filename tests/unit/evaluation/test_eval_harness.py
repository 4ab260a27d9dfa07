"""evaluate(): ordering, query policy, counts and input errors (shelflab.evaluation.harness)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import pytrec_eval

import shelflab.evaluation.ranking as ranking
from shelflab.errors import ConfigError, InputError
from shelflab.evaluation.harness import counts_line, evaluate


def qrels_df(rows):
    return pl.DataFrame(rows, schema=["query_id", "item_id", "grade"], orient="row")


def run_df(rows):
    return pl.DataFrame(rows, schema=["query_id", "item_id", "score"], orient="row")


# q1: judged a=2, b=1, c=0 ; q2: only non-relevant judgments ; q3: judged z=1, absent from run
QRELS = qrels_df(
    [
        ("q1", "a", 2.0),
        ("q1", "b", 1.0),
        ("q1", "c", 0.0),
        ("q2", "x", 0.0),
        ("q3", "z", 1.0),
    ]
)
# q1 ranking by score: c (0.9), b (0.5), a (0.1) ; q2 is excluded ; q9 is not in the qrels
RUN = run_df(
    [
        ("q1", "a", 0.1),
        ("q1", "b", 0.5),
        ("q1", "c", 0.9),
        ("q2", "x", 1.0),
        ("q9", "y", 1.0),
    ]
)


def test_policy_counts_and_scores():
    res = evaluate(QRELS, RUN, ["mrr", "recall@2", "ndcg@3"])
    # evaluated: q1 and q3 (q2 has no relevant item) ; q3 is missing from the run -> 0
    assert res.per_query["query_id"].to_list() == ["q1", "q3"]
    assert res.n_queries == 2
    assert res.n_missing_from_run == 1
    assert res.n_without_relevant == 1
    assert res.n_not_in_qrels == 1
    # q1: first relevant (b) at rank 2 -> mrr 1/2 ; recall@2 = 1/2 (b of {a, b})
    # ndcg@3: DCG = 0 + 1/log2(3) + 2/2 ; IDCG = 2 + 1/log2(3)
    q1 = res.per_query.row(0, named=True)
    assert q1["mrr"] == 0.5
    assert q1["recall@2"] == 0.5
    assert q1["ndcg@3"] == pytest.approx((1 / math.log2(3) + 1) / (2 + 1 / math.log2(3)))
    q3 = res.per_query.row(1, named=True)
    assert (q3["mrr"], q3["recall@2"], q3["ndcg@3"]) == (0.0, 0.0, 0.0)
    assert res.means["mrr"] == 0.25
    assert res.metrics == ["mrr", "recall@2", "ndcg@3"]
    assert res.per_query.schema == pl.Schema(
        {"query_id": pl.String, "mrr": pl.Float64, "recall@2": pl.Float64, "ndcg@3": pl.Float64}
    )
    assert res.summary()["n_not_in_qrels"] == 1
    assert res.notes == [
        "1 missing from the run (scored 0)",
        "1 without a relevant item (excluded)",
        "1 run queries not in the qrels (ignored)",
    ]
    assert counts_line(res.counts()) == (
        "queries: 2 evaluated, 1 missing from the run (scored 0), 1 without a relevant item "
        "(excluded), 1 run queries not in the qrels (ignored)"
    )
    assert evaluate(QRELS, RUN.filter(pl.col("query_id") != "q9"), ["mrr"]).notes == [
        "1 missing from the run (scored 0)",
        "1 without a relevant item (excluded)",
    ]


def test_rank_column_is_ignored():
    ranked = RUN.with_columns(pl.Series("rank", [1, 2, 3, 1, 1]))  # claims a is first
    assert evaluate(QRELS, ranked, ["mrr"]).means == evaluate(QRELS, RUN, ["mrr"]).means


def test_ties_broken_by_item_id_descending_like_trec_eval():
    # all scores equal: order by item_id descending as strings: "9" > "10" > "1"
    qrels = qrels_df([("q", "10", 1.0)])
    run = run_df([("q", "1", 1.0), ("q", "10", 1.0), ("q", "9", 1.0)])
    res = evaluate(qrels, run, ["mrr"])
    assert res.means["mrr"] == 0.5  # "10" is second
    ev = pytrec_eval.RelevanceEvaluator({"q": {"10": 1}}, {"recip_rank"})
    assert ev.evaluate({"q": {"1": 1.0, "10": 1.0, "9": 1.0}})["q"]["recip_rank"] == 0.5


def test_relevance_threshold():
    # q1 with threshold 2: only a (grade 2, rank 3) is relevant -> mrr 1/3 ; q3 excluded (z=1)
    res = evaluate(QRELS, RUN, ["mrr"], relevance_threshold=2)
    assert res.per_query["query_id"].to_list() == ["q1"]
    assert res.means["mrr"] == pytest.approx(1 / 3)
    assert res.n_without_relevant == 2


def test_float_grades_and_threshold():
    qrels = qrels_df([("q", "a", 1.33), ("q", "b", 0.67)])
    run = run_df([("q", "b", 2.0), ("q", "a", 1.0)])
    res = evaluate(qrels, run, ["precision@1", "ndcg@2", "hit@1"], relevance_threshold=0.5)
    # both relevant at 0.5 ; ndcg@2 = (0.67 + 1.33/log2(3)) / (1.33 + 0.67/log2(3))
    assert res.means["precision@1"] == 1.0
    assert res.means["ndcg@2"] == pytest.approx(
        (0.67 + 1.33 / math.log2(3)) / (1.33 + 0.67 / math.log2(3)), abs=1e-15
    )
    assert evaluate(qrels, run, ["hit@1"], relevance_threshold=1.0).means["hit@1"] == 0.0


def _random_case(seed: int, n_queries: int = 40):
    rng = np.random.default_rng(seed)
    qrels, run = [], []
    for q in range(n_queries):
        items = rng.choice(60, size=rng.integers(1, 40), replace=False)
        for j, d in enumerate(items):
            run.append((f"q{q}", f"d{d}", float(rng.integers(0, 6))))  # many ties
            if j % 3 == 0:
                qrels.append((f"q{q}", f"d{d}", float(rng.integers(0, 4))))
        qrels.append((f"q{q}", f"u{q}", 1.0))  # judged, never retrieved
    return qrels_df(qrels), run_df(run)


METRICS = ["ndcg@5", "ndcg", "precision@3", "recall@10", "mrr", "map", "map@4", "r-precision"]


def test_input_order_does_not_matter(monkeypatch):
    qrels, run = _random_case(1)
    shuffled = evaluate(qrels, run.sample(fraction=1.0, shuffle=True, seed=3), METRICS)
    ordered = evaluate(
        qrels, run.sort(["query_id", "score", "item_id"], descending=[False, True, True]), METRICS
    )
    assert shuffled.per_query.equals(ordered.per_query)
    # without ties (distinct scores), the row-wise sort alone decides
    distinct = run.with_columns(pl.col("score") + pl.int_range(pl.len()) * 1e-9)
    assert evaluate(qrels, distinct, METRICS).per_query.equals(
        evaluate(qrels, distinct.sample(fraction=1.0, shuffle=True, seed=5), METRICS).per_query
    )
    # runs with a few very long queries take the global-sort path: same numbers
    monkeypatch.setattr(ranking, "_PADDING_ALLOWANCE", -(10**9))
    fallback = evaluate(qrels, run.sample(fraction=1.0, shuffle=True, seed=4), METRICS)
    assert fallback.per_query.equals(ordered.per_query)


def test_equal_length_runs_shuffled():
    # every query has exactly 10 results: the padded matrix has no padding
    rng = np.random.default_rng(9)
    run = run_df(
        [(f"q{q}", f"d{d}", float(rng.integers(0, 3))) for q in range(30) for d in range(10)]
    )
    qrels = qrels_df([(f"q{q}", f"d{d}", 1.0) for q in range(30) for d in range(0, 10, 4)])
    ordered = run.sort(["query_id", "score", "item_id"], descending=[False, True, True])
    expected = evaluate(qrels, ordered, METRICS).per_query
    assert evaluate(
        qrels, run.sample(fraction=1.0, shuffle=True, seed=1), METRICS
    ).per_query.equals(expected)


@pytest.mark.parametrize("padded", [False, True])
def test_unsorted_run_of_200k_queries(padded):
    """More queries than a 16-bit index (65,536) in a shuffled run: it used to overflow."""
    n = 200_000
    length = pl.col("i") % 3 + 1 if padded else pl.lit(3)  # 1..3 results: a padded matrix
    run = (
        pl.select(pl.int_range(n).alias("i"))
        .join(pl.DataFrame({"rank": [1, 2, 3]}), how="cross")
        .filter(pl.col("rank") <= length)
        .select(
            pl.format("q{}", "i").alias("query_id"),
            pl.format("d{}", "rank").alias("item_id"),
            (4.0 - pl.col("rank")).alias("score"),
        )
    )
    qrels = run.filter(pl.col("item_id") == "d1").select(
        "query_id", "item_id", pl.lit(1.0).alias("grade")
    )
    # d1 is each query's top result: mrr 1; precision@3 = 1 / 3 with 3 results per query
    shuffled = run.sample(fraction=1.0, shuffle=True, seed=11)
    result = evaluate(qrels, shuffled, ["mrr", "precision@3"])
    assert result.n_queries == n and result.means["mrr"] == 1.0
    if not padded:
        assert result.means["precision@3"] == pytest.approx(1 / 3)
    expected = evaluate(qrels, run, ["mrr", "precision@3"])  # grouped and ranked: the fast path
    assert result.per_query.equals(expected.per_query)


def test_matches_pytrec_eval_on_tied_scores():
    qrels, run = _random_case(2)
    res = evaluate(qrels, run, ["ndcg@5", "map", "precision@3", "mrr"])
    q_dict: dict[str, dict[str, int]] = {}
    for q, d, g in qrels.iter_rows():
        q_dict.setdefault(q, {})[d] = int(g)
    r_dict: dict[str, dict[str, float]] = {}
    for q, d, s in run.iter_rows():
        r_dict.setdefault(q, {})[d] = s
    ev = pytrec_eval.RelevanceEvaluator(q_dict, {"ndcg_cut.5", "map", "P.3", "recip_rank"})
    ref = ev.evaluate(r_dict)
    for row in res.per_query.iter_rows(named=True):
        r = ref[row["query_id"]]
        assert row["ndcg@5"] == pytest.approx(r["ndcg_cut_5"], abs=1e-12)
        assert row["map"] == pytest.approx(r["map"], abs=1e-12)
        assert row["precision@3"] == pytest.approx(r["P_3"], abs=1e-12)
        assert row["mrr"] == pytest.approx(r["recip_rank"], abs=1e-12)


def test_integer_ids_are_read_as_strings():
    qrels = pl.DataFrame({"query_id": [1], "item_id": [7], "grade": [1]})
    run = pl.DataFrame({"query_id": [1, 1], "item_id": [7, 8], "score": [0.5, 0.9]})
    res = evaluate(qrels, run, ["mrr"])
    assert res.per_query["query_id"].to_list() == ["1"]
    assert res.means["mrr"] == 0.5


def test_duplicate_metrics_are_collapsed():
    res = evaluate(QRELS, RUN, ["mrr", "MRR", "mrr"])
    assert res.per_query.columns == ["query_id", "mrr"]


# --- errors ------------------------------------------------------------------------------------


def test_no_common_query_names_both_sources():
    run = run_df([("other", "a", 1.0)])
    with pytest.raises(InputError, match=r"no query_id in common between bm25\.run.*gold\.qrels"):
        evaluate(QRELS, run, ["mrr"], qrels_source="gold.qrels", run_source="bm25.run")


def test_empty_run_has_no_common_query():
    with pytest.raises(InputError, match="no query_id in common"):
        evaluate(QRELS, RUN.clear(), ["mrr"])


def test_no_relevant_item_at_all():
    qrels = qrels_df([("q1", "a", 0.0)])
    with pytest.raises(InputError, match=r"no query has a relevant item \(grade >= 1\)"):
        evaluate(qrels, RUN, ["mrr"])


@pytest.mark.parametrize(
    ("score", "message"),
    [(float("nan"), "run, row 2: non-finite score NaN"), (float("inf"), "non-finite score inf")],
)
def test_non_finite_score(score, message):
    run = run_df([("q1", "a", 1.0), ("q1", "b", score)])
    with pytest.raises(InputError, match=message):
        evaluate(QRELS, run, ["mrr"])


def test_non_numeric_score():
    run = pl.DataFrame({"query_id": ["q1", "q1"], "item_id": ["a", "b"], "score": ["1", "high"]})
    with pytest.raises(InputError, match=r"row 2: column 'score' has 'high'"):
        evaluate(QRELS, run, ["mrr"])


def test_duplicate_run_item():
    run = run_df([("q1", "a", 1.0), ("q1", "b", 0.5), ("q1", "a", 0.2)])
    with pytest.raises(InputError, match=r"duplicate \(query_id, item_id\) = \('q1', 'a'\)"):
        evaluate(QRELS, run, ["mrr"])


def test_null_item_id():
    run = run_df([("q1", "a", 1.0), ("q1", None, 0.5)])
    with pytest.raises(InputError, match="row 2: empty 'item_id'"):
        evaluate(QRELS, run, ["mrr"])


def test_missing_run_column():
    with pytest.raises(InputError, match=r"missing column.*score"):
        evaluate(QRELS, RUN.drop("score"), ["mrr"])


def test_conflicting_grades():
    qrels = qrels_df([("q1", "a", 1.0), ("q1", "a", 2.0)])
    with pytest.raises(InputError, match=r"conflicting grades \[1.0, 2.0\].*'q1'.*'a'"):
        evaluate(qrels, RUN, ["mrr"])


def test_exact_duplicate_judgments_are_harmless():
    qrels = pl.concat([QRELS, QRELS])
    assert evaluate(qrels, RUN, ["map"]).means == evaluate(QRELS, RUN, ["map"]).means


def test_nan_grade():
    qrels = qrels_df([("q1", "a", float("nan"))])
    with pytest.raises(InputError, match="qrels, row 1: non-finite grade NaN"):
        evaluate(qrels, RUN, ["mrr"])


@pytest.mark.parametrize("threshold", [0, -1, float("nan"), "high"])
def test_bad_threshold(threshold):
    with pytest.raises(ConfigError, match="relevance_threshold"):
        evaluate(QRELS, RUN, ["mrr"], relevance_threshold=threshold)


def test_bad_metric_lists_known():
    with pytest.raises(ConfigError, match=r"unknown metric 'ndcg10'.*ndcg@K.*r-precision"):
        evaluate(QRELS, RUN, ["ndcg10"])
    with pytest.raises(ConfigError, match="no metric"):
        evaluate(QRELS, RUN, [])


def test_not_a_dataframe():
    with pytest.raises(InputError, match="expected a polars DataFrame"):
        evaluate(QRELS, {"q1": {"a": 1.0}}, ["mrr"])


def test_a_checked_run_scores_as_the_frame_and_is_not_checked_again(monkeypatch):
    from shelflab import contract

    checked = contract.check_run(RUN)
    expected = evaluate(QRELS, RUN, ["ndcg@10", "recall@10"])

    def no_second_check(*args, **kwargs):
        raise AssertionError("a CheckedRun was checked again")

    monkeypatch.setattr(contract.Keys, "of", no_second_check)
    got = evaluate(QRELS, checked, ["ndcg@10", "recall@10"])
    assert got.per_query.equals(expected.per_query) and got.counts() == expected.counts()


def test_check_run_raises_the_contract_errors():
    from shelflab.contract import check_run

    with pytest.raises(InputError, match=r"duplicate \(query_id, item_id\) = \('q1', 'a'\)"):
        check_run(run_df([("q1", "a", 1.0), ("q1", "a", 0.5)]), "r")
    with pytest.raises(InputError, match=r"row 1: non-finite score"):
        check_run(run_df([("q1", "a", math.inf)]), "r")
