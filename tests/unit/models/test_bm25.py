from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from shelflab.errors import ConfigError
from shelflab.models import create, open_model


def test_round_trip_gives_identical_runs(bm25_dirs, ctx, queries, check_run):
    model_dir, index_dir, built = bm25_dirs
    fresh = built.retrieve(queries, 50)
    reopened = open_model(model_dir, index_dir, ctx).retrieve(queries, 50)
    assert fresh.height > 0
    assert_frame_equal(fresh, reopened)
    check_run(reopened, 50)


def test_title_query_finds_its_product_first(bm25_dirs, ctx, title_queries, check_run):
    model = open_model(*bm25_dirs[:2], ctx)
    run = model.retrieve(title_queries.select("query_id", "text"), 10)
    check_run(run, 10)
    top = run.filter(pl.col("rank") == 1).join(title_queries, on="query_id")
    assert top.height == title_queries.height
    assert (top["item_id"] == top["item_id_right"]).all(), top


def test_unknown_tokens_and_big_k(bm25_dirs, ctx, items, check_run):
    model = open_model(*bm25_dirs[:2], ctx)
    q = pl.DataFrame(
        {"query_id": ["none", "stop", "one"], "text": ["zzqxw qqvvk", "the and of", "refrigerator"]}
    )
    run = model.retrieve(q, items.height + 500)
    check_run(run, items.height)
    assert set(run["query_id"]) == {"one"}  # no known terms -> no rows
    # only items containing the term come back, never the whole catalog
    n = run.height
    assert 0 < n < items.height
    texts = items.filter(pl.col("item_id").is_in(run["item_id"].implode()))["text"]
    assert texts.str.to_lowercase().str.contains("refriger").all()  # stemmed match
    assert model.retrieve(q.head(1), 10).height == 0


@pytest.mark.parametrize("method", ["bm25+", "robertson"])
def test_variants_drop_non_matching(tmp_path, ctx, items, check_run, method):
    model = create(
        "v", {"family": "bm25", "method": method, "stemmer": "none", "stopwords": "none"}, ctx
    )
    model.build_index(items.head(300), tmp_path)
    run = model.retrieve(pl.DataFrame({"query_id": ["q"], "text": ["white door"]}), 300)
    check_run(run, 300)
    matched = items.head(300).filter(
        pl.col("text").str.to_lowercase().str.contains(r"\bwhite\b|\bdoor\b")
    )
    assert set(run["item_id"]) == set(matched["item_id"])


def test_open_with_changed_analysis_fails(bm25_dirs, ctx):
    _, index_dir, _ = bm25_dirs
    other = create("bm25", {"family": "bm25", "stemmer": "none"}, ctx)
    with pytest.raises(ConfigError, match="stemmer"):
        other.open_index(index_dir)


def test_no_bm25s_debug_lines_under_a_root_handler(tmp_path, ctx, items, caplog):
    """bm25s sets its logger to DEBUG; with a root handler (a library's basicConfig) its
    "Building index" lines used to reach the stage output."""
    caplog.set_level("INFO")  # the root at INFO with a handler for every level, like
    caplog.handler.setLevel(0)  # logging.basicConfig(level=INFO)
    model = create("v", {"family": "bm25"}, ctx)
    model.build_index(items.head(50), tmp_path)
    model.retrieve(pl.DataFrame({"query_id": ["q"], "text": ["white door"]}), 5)
    assert not [r for r in caplog.records if r.name.startswith("bm25s")]


@pytest.mark.parametrize("k", [1, 5, 20])
def test_top_k_is_the_head_of_the_whole_ranking_alone_or_in_a_batch(bm25_dirs, ctx, queries, k):
    """Ties at the k-th score are broken as add_rank breaks them (larger item_id first), so the
    top k is exactly the head of the run over every matching item, whether a query comes alone
    (serving) or with 16+ others (evaluation, threaded)."""
    model = open_model(*bm25_dirs[:2], ctx)
    batch = queries.head(40)
    whole = model.retrieve(batch, 100_000)  # every item sharing a term: no cut-off at all
    head = whole.filter(pl.col("rank") <= k)
    got = model.retrieve(batch, k)
    assert_frame_equal(got.sort("query_id", "rank"), head.sort("query_id", "rank"))
    for i in range(0, 40, 7):
        alone = model.retrieve(batch.slice(i, 1), k)
        assert_frame_equal(alone, head.filter(pl.col("query_id") == batch["query_id"][i]))
    # the sample's short queries tie a lot: the cut-off really meets ties
    kth = whole.filter(pl.col("rank") == k).select("query_id", pl.col("score").alias("kth"))
    after = whole.filter(pl.col("rank") == k + 1).join(kth, on="query_id")
    assert (after["score"] == after["kth"]).any()
