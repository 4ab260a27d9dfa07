"""Bootstrap CIs and paired tests (shelflab.evaluation.significance)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.stats

from shelflab.errors import ConfigError, InputError
from shelflab.evaluation.significance import (
    PairedResult,
    bootstrap_ci,
    paired_test,
    summarize,
)


def test_bootstrap_ci_constant_values():
    assert bootstrap_ci([0.25, 0.25, 0.25]) == (0.25, 0.25, 0.25)


def test_bootstrap_ci_matches_normal_approximation():
    x = np.random.default_rng(7).normal(0.3, 0.2, 400)
    mean, low, high = bootstrap_ci(x, n_resamples=2000, seed=1)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))  # 0.0196
    assert mean == pytest.approx(x.mean(), abs=1e-15)
    assert low == pytest.approx(mean - half, abs=0.004)
    assert high == pytest.approx(mean + half, abs=0.004)


def test_bootstrap_ci_is_seeded_and_narrows_with_confidence():
    x = np.linspace(0, 1, 101)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(x, seed=3) != bootstrap_ci(x, seed=4)
    _, lo90, hi90 = bootstrap_ci(x, confidence=0.90)
    _, lo99, hi99 = bootstrap_ci(x, confidence=0.99)
    assert lo99 < lo90 < 0.5 < hi90 < hi99


def test_randomization_exact_hand_worked():
    # d = [0.1, 0.2, 0.3], mean 0.2. The 8 sign patterns give |mean| =
    # 0.2 (+++), 0.2 (---), 0 (++-), 0 (--+), 0.0667 (+-+), 0.0667 (-+-), 0.1333 (-++), 0.1333 (+--)
    # -> 2 of 8 reach 0.2: p = 0.25
    res = paired_test([0.5, 0.7, 0.9], [0.4, 0.5, 0.6])
    assert isinstance(res, PairedResult)
    assert res.p_value == 0.25
    assert res.delta == pytest.approx(0.2)
    assert (res.mean_a, res.mean_b, res.n) == (pytest.approx(0.7), pytest.approx(0.5), 3)
    # five equal positive differences: only all-plus and all-minus reach it -> 2/32
    assert paired_test([1.0] * 5, [0.0] * 5).p_value == 2 / 32


def test_randomization_exact_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.random(10)
    b = a + rng.normal(0.05, 0.1, 10)
    ref = scipy.stats.permutation_test(
        (a, b),
        lambda x, y: np.mean(x - y),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
    )
    assert paired_test(a, b).p_value == pytest.approx(ref.pvalue, abs=1e-12)


@pytest.mark.parametrize("method", ["randomization", "bootstrap"])
def test_monte_carlo_p_agrees_with_t_test(method):
    rng = np.random.default_rng(1)
    a = rng.random(2000)
    b = a + 0.01 + rng.normal(0, 0.2, 2000)
    res = paired_test(a, b, method=method, n_resamples=4000)
    t_p = scipy.stats.ttest_rel(a, b).pvalue  # ~0.006
    assert res.p_value == pytest.approx(t_p, abs=0.004)
    assert res.ci_low < res.delta < res.ci_high < 0


@pytest.mark.parametrize("method", ["randomization", "bootstrap"])
def test_identical_systems(method):
    a = np.linspace(0, 1, 50)
    res = paired_test(a, a.copy(), method=method)
    assert (res.p_value, res.delta, res.ci_low, res.ci_high) == (1.0, 0.0, 0.0, 0.0)


def test_bootstrap_constant_shift_is_significant():
    a = np.linspace(0, 1, 50)
    res = paired_test(a + 0.1, a, method="bootstrap", n_resamples=999)
    assert res.p_value == 1 / 1000


def test_p_value_is_never_zero():
    rng = np.random.default_rng(2)
    a = rng.random(500)
    res = paired_test(a + 0.5, a + rng.normal(0, 0.01, 500), n_resamples=200)
    assert res.p_value == 1 / 201


def test_dataframes_are_aligned_on_query_id():
    a = pl.DataFrame({"query_id": ["q1", "q2", "q3"], "mrr": [1.0, 0.5, 0.0]})
    b = pl.DataFrame({"query_id": ["q3", "q1", "q2"], "mrr": [0.0, 0.5, 0.5]})
    res = paired_test(a, b)
    # d = [0.5, 0, 0] in query order -> sign patterns give |mean| 1/6 always -> p = 1
    assert res.delta == pytest.approx(1 / 6)
    assert res.p_value == 1.0
    both = a.with_columns(pl.col("mrr").alias("ndcg@10"))
    with pytest.raises(ConfigError, match="name the metric"):
        paired_test(both, both)
    assert paired_test(both, both, metric="ndcg@10").delta == 0.0


def test_different_queries_are_an_error():
    a = pl.DataFrame({"query_id": ["q1", "q2"], "mrr": [1.0, 0.5]})
    b = pl.DataFrame({"query_id": ["q1", "q3"], "mrr": [1.0, 0.5]})
    with pytest.raises(InputError, match=r"different queries \(1 only in a, 1 only in b\)"):
        paired_test(a, b)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"a": [1.0, 2.0], "b": [1.0]}, InputError, "a has 2 scores but b has 1"),
        ({"a": [1.0], "b": [1.0]}, InputError, "at least 2 queries"),
        ({"a": [1.0, float("nan")], "b": [1.0, 1.0]}, InputError, "non-finite"),
        ({"a": [1.0, 2.0], "b": [1.0, 1.0], "method": "t"}, ConfigError, "unknown test method"),
        ({"a": [1.0, 2.0], "b": [1.0, 1.0], "n_resamples": 0}, ConfigError, "n_resamples"),
        ({"a": [1.0, 2.0], "b": [1.0, 1.0], "confidence": 1.5}, ConfigError, "confidence"),
    ],
)
def test_paired_test_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        paired_test(**kwargs)


def test_bootstrap_ci_errors():
    with pytest.raises(InputError, match="empty"):
        bootstrap_ci([])
    with pytest.raises(InputError, match="1-D"):
        bootstrap_ci([[1.0, 2.0]])


def test_summarize():
    per_query = pl.DataFrame(
        {"query_id": ["a", "b", "c", "d"], "mrr": [1.0, 0.5, 0.0, 0.5], "hit@1": [1.0] * 4}
    )
    out = summarize(per_query)
    assert out.columns == ["metric", "mean", "ci_low", "ci_high", "n"]
    assert out["metric"].to_list() == ["mrr", "hit@1"]
    assert out["mean"].to_list() == [0.5, 1.0]
    assert out["n"].to_list() == [4, 4]
    assert out.row(1) == ("hit@1", 1.0, 1.0, 1.0, 4)
    lo, hi = out.row(0)[2:4]
    assert 0.0 <= lo < 0.5 < hi <= 1.0
    assert summarize(per_query, ["hit@1"]).height == 1
    with pytest.raises(ConfigError, match=r"ndcg@10 not in the per-query table"):
        summarize(per_query, ["ndcg@10"])
