"""Model side of a drift report: the batch's review -> item task, a real bm25 on it, and the
batch-vs-test comparison (hand-worked and against scipy's permutation test)."""

import numpy as np
import polars as pl
import pytest

from shelflab.drift.model_side import batch_task, compare_with_test, per_query_on_batch, two_sample
from shelflab.models import ModelContext, create


def reviews() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "review_id": ["r1", "r2", "r3", "r4"],
            "user_id": ["u1", "u1", "u2", "u3"],
            "item_id": ["lipstick", "mascara", "lipstick", "drill"],
            "timestamp": [5, 5, 6, 7],
            "summary": ["Red", "Red", "Dry", "Loud"],
            "body": ["lovely red lipstick", "lovely red lipstick", "dry lips after", "drill"],
        }
    )


def test_batch_task_counts_unknown_items_and_merges_variants():
    catalog = pl.Series(["lipstick", "mascara", "blush"])
    queries, qrels, counts = batch_task(reviews(), catalog)
    assert counts == {"batch_reviews": 4, "reviews_of_unknown_items": 1, "queries": 2}
    assert qrels.height == 3  # u1's review is posted under two variants: both relevant
    assert set(queries["text"]) == {"Red. lovely red lipstick", "Dry. dry lips after"}


def test_real_bm25_on_the_batch(tmp_path):
    items = pl.DataFrame(
        {"item_id": ["lipstick", "mascara"], "text": ["red lipstick lovely", "black mascara"]}
    )
    model = create("bm25", {"family": "bm25"}, ModelContext(cache_dir=tmp_path))
    model.build_index(items, tmp_path / "index")
    queries, qrels, _ = batch_task(reviews(), items["item_id"])
    per_query = per_query_on_batch(model, queries, qrels, ["recall@1", "hit@1"], k=2)
    by_text = dict(zip(queries["query_id"], queries["text"], strict=True))
    got = {by_text[q]: r for q, r in per_query.select("query_id", "recall@1").iter_rows()}
    # "red lovely lipstick" ranks the lipstick first: 1 of its 2 relevant variants at rank 1
    assert got["Red. lovely red lipstick"] == pytest.approx(0.5)
    assert got["Dry. dry lips after"] == 0.0  # no shared term: nothing retrieved


def test_two_sample_hand_worked():
    # a = 1,1,1,1 and b = 0,0,0,0: of the C(8,4) = 70 splits, 2 give |diff| >= 1 -> p = 2/70
    delta, low, high, p = two_sample(np.ones(4), np.zeros(4), 20_000, 0.95, seed=0)
    assert delta == 1.0 and low == high == 1.0
    assert p == pytest.approx(2 / 70, abs=0.005)


def test_two_sample_agrees_with_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    a, b = rng.random(40), rng.random(50) * 0.8
    _, low, high, p = two_sample(a, b, 20_000, 0.95, seed=1)
    ref = scipy_stats.permutation_test(
        (a, b), lambda x, y: x.mean() - y.mean(), n_resamples=20_000, random_state=1
    )
    assert p == pytest.approx(ref.pvalue, abs=0.01)
    assert low < a.mean() - b.mean() < high


def test_compare_paired_when_the_batch_is_the_test_split():
    test = pl.DataFrame({"query_id": ["a", "b", "c"], "ndcg@10": [1.0, 0.5, 0.0]})
    same = compare_with_test(test, test, "ndcg@10", n_resamples=500)
    assert same["method"] == "paired" and same["delta"] == 0.0 and same["p_value"] == 1.0
    worse = pl.DataFrame({"query_id": ["x", "y", "z", "w"], "ndcg@10": [0.0] * 4})
    drop = compare_with_test(worse, test, "ndcg@10", n_resamples=2000)
    assert drop["method"] == "two-sample permutation"
    assert drop["delta"] == pytest.approx(-0.5)
    assert drop["batch"]["n"] == 4 and drop["test"]["mean"] == pytest.approx(0.5)
