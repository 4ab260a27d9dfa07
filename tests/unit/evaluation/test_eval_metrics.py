"""Hand-worked values for every metric (shelflab.evaluation.metrics).

Discounts used below: 1/log2(r+1) for rank r:
  r=1: 1   r=2: 1/log2(3) = 0.6309298   r=3: 1/log2(4) = 0.5   r=4: 1/log2(5) = 0.4306766
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shelflab.errors import ConfigError, ShelfLabError
from shelflab.evaluation.metrics import (
    METRICS,
    GainMatrix,
    MetricSpec,
    compute,
    parse_metric,
    required_depth,
)

L3, L5 = math.log2(3), math.log2(5)

# Query A (threshold 1). Judged: a=2, b=1, c=0.5, d=0, e=3 (e is never retrieved).
# Run order: a, x (unjudged), b, c, d  -> ranked grades [2, 0, 1, 0.5, 0]
# Relevant (grade >= 1): a (rank 1), b (rank 3), e (not retrieved) -> R = 3.
# Ideal (positive grades, descending): [3, 2, 1, 0.5]
A_RANKED = [2, 0, 1, 0.5, 0]
A_JUDGED = [2, 1, 0.5, 0, 3]

# Query B (threshold 1). Judged: 0.5, 1.33, 2. Run: [0 (unjudged), 0.5, 1.33, 2]
# Relevant: rank 3 (1.33) and rank 4 (2) -> R = 2. Ideal: [2, 1.33, 0.5]
B_RANKED = [0, 0.5, 1.33, 2]
B_JUDGED = [0.5, 1.33, 2]


@pytest.fixture
def ab() -> GainMatrix:
    return GainMatrix.from_lists([A_RANKED, B_RANKED], [A_JUDGED, B_JUDGED], threshold=1.0)


def test_registry_has_every_metric():
    assert set(METRICS) == {
        "ndcg",
        "ndcg_burges",
        "precision",
        "recall",
        "hit",
        "mrr",
        "map",
        "r-precision",
    }


def test_ndcg_at_3(ab):
    # A: DCG@3 = 2/1 + 0 + 1/2 = 2.5 ; IDCG@3 = 3/1 + 2/log2(3) + 1/2 = 4.7618597
    # B: DCG@3 = 0 + 0.5/log2(3) + 1.33/2 = 0.9804649
    #    IDCG@3 = 2 + 1.33/log2(3) + 0.5/2 = 3.0891366
    got = compute(ab, ["ndcg@3"])["ndcg@3"]
    assert got[0] == pytest.approx(2.5 / (3 + 2 / L3 + 0.5), abs=1e-12)
    assert got[0] == pytest.approx(0.5250050, abs=1e-7)
    assert got[1] == pytest.approx((0.5 / L3 + 1.33 / 2) / (2 + 1.33 / L3 + 0.25), abs=1e-12)
    assert got[1] == pytest.approx(0.3173912, abs=1e-7)


def test_ndcg_full_depth_and_cutoff_beyond_run(ab):
    # A, no cutoff: DCG = 2 + 1/2 + 0.5/log2(5) = 2.7153383 ;
    #   IDCG over all 4 positive judged grades = 3 + 2/log2(3) + 1/2 + 0.5/log2(5) = 4.9771978
    expected_a = (2.5 + 0.5 / L5) / (3 + 2 / L3 + 0.5 + 0.5 / L5)
    assert expected_a == pytest.approx(0.5455556, abs=1e-7)
    scores = compute(ab, ["ndcg", "ndcg@5", "ndcg@50"])
    for label in ("ndcg", "ndcg@5", "ndcg@50"):
        assert scores[label][0] == pytest.approx(expected_a, abs=1e-12)


def test_ndcg_ideal_uses_unretrieved_judged_items():
    # one query: run [1] ; judged grades 1 (retrieved) and 2 (not retrieved)
    # ndcg@1 = 1 / 2 (the ideal top-1 is the grade-2 item)
    m = GainMatrix.from_lists([[1]], [[1, 2]])
    assert compute(m, ["ndcg@1"])["ndcg@1"][0] == pytest.approx(0.5, abs=1e-15)


def test_ndcg_burges_at_3(ab):
    # A gains 2^g - 1: a=3, b=1, c=sqrt(2)-1, e=7.
    # DCG@3 = 3 + 0 + 1/2 = 3.5 ; IDCG@3 = 7 + 3/log2(3) + 1/2 = 9.3927893 -> 0.3726263
    got = compute(ab, ["ndcg_burges@3"])["ndcg_burges@3"]
    assert got[0] == pytest.approx(3.5 / (7 + 3 / L3 + 0.5), abs=1e-12)
    assert got[0] == pytest.approx(0.3726263, abs=1e-7)


def test_ndcg_burges_with_grades_past_float_range():
    """2^2000 overflows a float: it used to give inf / inf = NaN (and NaN in the JSON)."""
    # run: b (1999) then a (2000); DCG / IDCG with both divided by 2^2000:
    # (1/2 + 1/log2 3) / (1 + (1/2)/log2 3)
    m = GainMatrix.from_lists([[1999, 2000]], [[2000, 1999]])
    got = compute(m, ["ndcg_burges", "ndcg_burges@1"])
    assert got["ndcg_burges"][0] == pytest.approx((0.5 + 1 / L3) / (1 + 0.5 / L3), rel=1e-12)
    assert got["ndcg_burges@1"][0] == pytest.approx(0.5, rel=1e-12)
    # a second, ordinary query in the same matrix keeps its exact value
    m = GainMatrix.from_lists([[1999, 2000], [1, 3]], [[2000, 1999], [3, 1]])
    ordinary = (1 + 7 / L3) / (7 + 1 / L3)
    assert compute(m, ["ndcg_burges"])["ndcg_burges"][1] == pytest.approx(ordinary, abs=1e-15)


def test_precision(ab):
    # A top 3: a, x, b -> 2 relevant -> 2/3 ; B top 3: one relevant (1.33) -> 1/3
    # @10 (longer than both runs): denominator stays 10 -> A 2/10, B 2/10
    s = compute(ab, ["precision@3", "precision@10", "precision@1"])
    np.testing.assert_allclose(s["precision@3"], [2 / 3, 1 / 3], atol=1e-15)
    np.testing.assert_allclose(s["precision@10"], [0.2, 0.2], atol=1e-15)
    np.testing.assert_allclose(s["precision@1"], [1.0, 0.0], atol=1e-15)


def test_recall(ab):
    # A: R=3 (e never retrieved). top1 -> 1/3 ; top5 -> 2/3.  B: R=2 ; top3 -> 1/2 ; top4 -> 1
    s = compute(ab, ["recall@1", "recall@3", "recall@5", "recall@100"])
    np.testing.assert_allclose(s["recall@1"], [1 / 3, 0.0], atol=1e-15)
    np.testing.assert_allclose(s["recall@3"], [2 / 3, 0.5], atol=1e-15)
    np.testing.assert_allclose(s["recall@5"], [2 / 3, 1.0], atol=1e-15)
    np.testing.assert_allclose(s["recall@100"], [2 / 3, 1.0], atol=1e-15)


def test_hit(ab):
    # A: relevant at rank 1 ; B: first relevant at rank 3
    s = compute(ab, ["hit@1", "hit@2", "hit@3"])
    np.testing.assert_array_equal(s["hit@1"], [1.0, 0.0])
    np.testing.assert_array_equal(s["hit@2"], [1.0, 0.0])
    np.testing.assert_array_equal(s["hit@3"], [1.0, 1.0])


def test_mrr(ab):
    # A: first relevant at rank 1 -> 1 ; B: at rank 3 -> 1/3, so mrr@2 = 0 and mrr@3 = 1/3
    s = compute(ab, ["mrr", "mrr@2", "mrr@3"])
    np.testing.assert_allclose(s["mrr"], [1.0, 1 / 3], atol=1e-15)
    np.testing.assert_allclose(s["mrr@2"], [1.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(s["mrr@3"], [1.0, 1 / 3], atol=1e-15)


def test_map(ab):
    # A: precision at relevant ranks: r1 1/1, r3 2/3 -> (1 + 2/3) / R=3 = 0.5555556
    #    map@2 keeps r1 only -> 1/3 (still divided by all 3 relevant: trec_eval map_cut)
    # B: r3 1/3, r4 2/4 -> (1/3 + 1/2) / 2 = 0.4166667 ; map@3 -> (1/3) / 2
    s = compute(ab, ["map", "map@2", "map@3", "map@100"])
    np.testing.assert_allclose(s["map"], [(1 + 2 / 3) / 3, (1 / 3 + 1 / 2) / 2], atol=1e-15)
    np.testing.assert_allclose(s["map@2"], [1 / 3, 0.0], atol=1e-15)
    np.testing.assert_allclose(s["map@3"], [(1 + 2 / 3) / 3, (1 / 3) / 2], atol=1e-15)
    np.testing.assert_allclose(s["map@100"], s["map"], atol=1e-15)


def test_r_precision(ab):
    # A: R=3, top 3 holds a, b -> 2/3 ; B: R=2, top 2 holds no relevant item -> 0
    np.testing.assert_allclose(compute(ab, ["r-precision"])["r-precision"], [2 / 3, 0.0])


def test_r_precision_when_run_shorter_than_r():
    # R = 4 relevant, run of 2 items both relevant -> 2/4
    m = GainMatrix.from_lists([[1, 1]], [[1, 1, 1, 1]])
    assert compute(m, ["r-precision"])["r-precision"][0] == 0.5


def test_threshold_changes_binary_metrics_not_ndcg():
    # B with threshold 1.5: only the grade-2 item (rank 4) is relevant, R = 1.
    # ndcg uses the grades themselves, whatever the threshold.
    t1 = GainMatrix.from_lists([B_RANKED], [B_JUDGED], threshold=1.0)
    t15 = GainMatrix.from_lists([B_RANKED], [B_JUDGED], threshold=1.5)
    s1, s15 = compute(t1, ["ndcg@4", "mrr", "map"]), compute(t15, ["ndcg@4", "mrr", "map"])
    assert s15["ndcg@4"][0] == s1["ndcg@4"][0]
    assert s15["mrr"][0] == 0.25  # first relevant at rank 4
    assert s15["map"][0] == 0.25  # (1/4) / 1


def test_negative_grades_give_no_gain():
    # trec_eval treats negative grades as gain 0: run [-1, 2] vs judged {-1, 2}
    # DCG@2 = 0 + 2/log2(3) ; IDCG@2 = 2 -> 1/log2(3)
    m = GainMatrix.from_lists([[-1, 2]], [[-1, 2]])
    assert compute(m, ["ndcg@2"])["ndcg@2"][0] == pytest.approx(1 / L3, abs=1e-15)
    assert compute(m, ["precision@2"])["precision@2"][0] == 0.5


def test_empty_run_row_scores_zero():
    m = GainMatrix.from_lists([[]], [[1, 2]])
    s = compute(m, list(_all_labels()))
    assert all(v[0] == 0.0 for v in s.values())


def _all_labels():
    return [
        "ndcg@10",
        "ndcg",
        "ndcg_burges@10",
        "precision@10",
        "recall@10",
        "hit@10",
        "mrr",
        "mrr@10",
        "map",
        "map@10",
        "r-precision",
    ]


@pytest.mark.parametrize(
    ("label", "spec"),
    [
        ("ndcg@10", MetricSpec("ndcg", 10)),
        ("NDCG@10", MetricSpec("ndcg", 10)),
        ("ndcg", MetricSpec("ndcg", None)),
        ("mrr", MetricSpec("mrr", None)),
        ("mrr@5", MetricSpec("mrr", 5)),
        ("map@100", MetricSpec("map", 100)),
        ("r-precision", MetricSpec("r-precision", None)),
        ("ndcg_burges@3", MetricSpec("ndcg_burges", 3)),
    ],
)
def test_parse_metric(label, spec):
    assert parse_metric(label) == spec
    assert spec.label == label.lower()


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("ndgc@10", "unknown metric 'ndgc@10'"),
        ("ndcg@0", "cutoff must be a positive integer"),
        ("ndcg@x", "cutoff must be a positive integer"),
        ("ndcg@-1", "cutoff must be a positive integer"),
        ("ndcg@１０", "cutoff must be a positive integer"),  # full-width digits pass isdigit
        ("ndcg@²", "cutoff must be a positive integer"),
        ("precision", "needs a cutoff"),
        ("recall", "needs a cutoff"),
        ("hit", "needs a cutoff"),
        ("r-precision@5", "takes no cutoff"),
    ],
)
def test_parse_metric_errors(label, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_metric(label)
    assert isinstance(info.value, ShelfLabError)


def test_unknown_metric_lists_known_ones():
    with pytest.raises(ConfigError) as info:
        parse_metric("auc")
    for name in METRICS:
        assert name in str(info.value)


def test_required_depth():
    specs = [parse_metric(x) for x in ("ndcg@10", "recall@100")]
    assert required_depth(specs, max_len=50, max_relevant=3) == 50
    assert required_depth(specs[:1], max_len=50, max_relevant=3) == 10
    assert required_depth([parse_metric("mrr")], max_len=70, max_relevant=3) == 70
    assert required_depth([parse_metric("r-precision")], max_len=70, max_relevant=3) == 3
    assert required_depth([parse_metric("mrr@5")], max_len=0, max_relevant=3) == 1


def test_threshold_must_be_positive():
    with pytest.raises(ConfigError, match="threshold"):
        GainMatrix.from_lists([[1]], [[1]], threshold=0)
