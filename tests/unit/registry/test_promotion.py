"""The champion/challenger gate on real per-query results (bm25 and dense MiniLM over the 500
sample queries), plus hand-worked guardrail cases."""

from __future__ import annotations

import polars as pl
import pytest

from shelflab.errors import ConfigError, InputError
from shelflab.evaluation.significance import paired_test
from shelflab.registry.promotion import check_config, decide, guardrail


def per_query(built, key):
    return built[key].report.per_query_table().drop("split")


def test_significantly_better_candidate_is_promoted(built, promote_cfg):
    bm25, dense = per_query(built, "bm25"), per_query(built, "dense")
    d = decide(bm25, dense, promote_cfg(guardrails={}), split="test")
    ref = paired_test(bm25, dense, metric="ndcg@10", n_resamples=2000, seed=0)
    assert d.n_queries == bm25.height > 400
    assert d.delta == pytest.approx(ref.delta) and d.p_value == pytest.approx(ref.p_value)
    assert d.delta > 0 and d.p_value < 0.05
    assert d.promote, d.summary()


def test_significantly_worse_candidate_is_refused(built, promote_cfg):
    recall_only = promote_cfg(guardrails={"recall@100": {"max_drop": 0.05}})
    d = decide(per_query(built, "dense"), per_query(built, "bm25"), recall_only, split="test")
    assert not d.promote and d.delta < 0
    assert "not significantly better" in d.reason


def test_identical_candidate_is_refused(built, promote_cfg):
    bm25 = per_query(built, "bm25")
    d = decide(bm25, bm25, promote_cfg(guardrails={}), split="test")
    assert not d.promote and d.delta == 0 and d.p_value == 1.0


def test_min_delta_blocks_a_small_significant_gain(built, promote_cfg):
    bm25, dense = per_query(built, "bm25"), per_query(built, "dense")
    gain = decide(bm25, dense, promote_cfg(guardrails={}), split="test").delta
    d = decide(bm25, dense, promote_cfg(guardrails={}, min_delta=gain + 0.001), split="test")
    assert not d.promote and "below min_delta" in d.reason


def test_guardrails_from_columns_and_from_run_metrics(built, promote_cfg):
    bm25, dense = per_query(built, "bm25"), per_query(built, "dense")
    # recall@100 is a per-query column: compared on its means over the same queries
    strict = promote_cfg(guardrails={"recall@100": {"max_drop": -1.0}})  # demands a +1.0 gain
    d = decide(bm25, dense, strict, split="test")
    assert not d.promote and "recall@100" in d.reason
    g = d.guardrails[0]
    assert g.candidate == pytest.approx(bm25["recall@100"].mean())
    assert g.champion == pytest.approx(dense["recall@100"].mean())
    # latency comes from the runs' metrics
    slow = promote_cfg(guardrails={"latency_p95_ms": {"max_ratio": 2.0}})
    d = decide(bm25, dense, slow, split="test", guard_values={"latency_p95_ms": (300.0, 100.0)})
    assert not d.promote and not d.guardrails[0].passed


@pytest.mark.parametrize(
    ("rule", "cand", "champ", "ok"),
    [
        ({"max_drop": 0.01}, 0.70, 0.71, True),  # dropped exactly the tolerance
        ({"max_drop": 0.01}, 0.69, 0.71, False),
        ({"max_ratio": 1.5}, 150.0, 100.0, True),
        ({"max_ratio": 1.5}, 151.0, 100.0, False),
        ({"max": 200.0}, 199.0, 10.0, True),
        ({"max": 200.0, "max_ratio": 100.0}, 201.0, 10.0, False),
    ],
)
def test_guardrail_rules(rule, cand, champ, ok):
    assert guardrail("g", rule, cand, champ).passed is ok


def test_different_query_sets_are_refused(built, promote_cfg):
    bm25, dense = per_query(built, "bm25"), per_query(built, "dense")
    with pytest.raises(InputError, match="different queries"):
        decide(bm25.head(100), dense, promote_cfg(guardrails={}), split="test")
    with pytest.raises(InputError, match="no per-query 'ndcg@5'"):
        decide(bm25, dense, promote_cfg(metric="ndcg@5", guardrails={}), split="test")
    with pytest.raises(ConfigError, match="no per-query column and no run metric"):
        decide(bm25, dense, promote_cfg(), split="test")  # latency needs guard_values


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"alpha": 1.5}, "alpha must be in"),
        ({"guardrails": {"recall@100": {"min": 1}}}, "expected a mapping"),
        ({"guardrails": {"recall@100": 0.1}}, "expected a mapping"),
    ],
)
def test_bad_config(over, message, promote_cfg):
    with pytest.raises(ConfigError, match=message):
        check_config(promote_cfg(**over))


def test_missing_key(promote_cfg):
    c = promote_cfg()
    del c["alpha"]
    with pytest.raises(ConfigError, match="missing key 'alpha'"):
        check_config(c)


def test_frames_keep_their_metric_columns(built):
    table = built["bm25"].report.per_query_table()
    assert {"query_id", "ndcg@10", "recall@100", "mrr", "split"} <= set(table.columns)
    assert table.filter(pl.col("split") == "test").height == table.height
