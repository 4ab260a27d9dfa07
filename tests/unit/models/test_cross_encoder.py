"""cross_encoder end to end on the 2,000-product Home Depot subset with real judged search
terms: a bm25 first stage and tiny training budgets (CPU, a few steps per fit)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import polars as pl
import pytest
import torch

from shelflab.errors import ConfigError, InputError
from shelflab.models import TrainData, create
from shelflab.models.training import ON_VALID, judged_queries, score_run

SPEC = {
    "family": "cross_encoder",
    "components": {"bm25": {"family": "bm25"}},
    "first_stage": "bm25",
    "candidates": 20,
    "negatives": 4,
    "max_length": 32,
    "epochs": 2,
    "patience": 0,
    "max_train_queries": 40,
    "fusion_weight": 1.0,  # pure cross-encoder scores (test_fusion_weight_* covers fusion)
}
# determinism / hook-raising fits: a handful of steps each
TINY = {**SPEC, "candidates": 10, "negatives": 2, "epochs": 1, "max_train_queries": 12}


@pytest.fixture(scope="module")
def data(split_judged):
    return split_judged(slice(0, 60), slice(200, 220), slice(250, 260))


def own_ctx(ctx, **extra):
    """The session ctx with its own `extra` (the progress hook must not leak)."""
    return dataclasses.replace(ctx, extra=dict(extra))


@pytest.fixture(scope="module")
def trained(ctx, data):
    calls: list[tuple[int, float]] = []
    model = create("ce", SPEC, own_ctx(ctx, **{ON_VALID: lambda s, v: calls.append((s, v))}))
    model.fit(data[0])
    return model, calls


@pytest.fixture(scope="module")
def opened(trained, ctx, items, tmp_path_factory, reopen):
    opened = reopen(trained[0], ctx, items, tmp_path_factory.mktemp("cross_encoder"))
    yield opened
    opened[0].close()


@pytest.fixture(scope="module")
def deep_run(opened, data):
    """k above `candidates`: ranks 21..30 come from the first stage."""
    return opened[0].retrieve(data[1], 30)


def test_save_load_index_retrieve(opened, deep_run, data, check_run):
    model, model_dir, index_dir = opened
    test_q = data[1]
    check_run(deep_run, 30)
    assert deep_run["query_id"].n_unique() > 0.8 * test_q.height
    run = model.retrieve(test_q.head(3), 10)
    check_run(run, 10)
    assert run.group_by("query_id").len()["len"].max() == 10
    saved = model_dir / "cross_encoder"
    assert (saved / "model.safetensors").is_file() and (saved / "config.json").is_file()
    for pattern in ("*.pkl", "*.bin", "*.pt", "*.pth"):
        assert not list(model_dir.rglob(pattern))
    info = json.loads((model_dir / "cross_encoder.json").read_text())
    assert info == model.train_info and info["trained"] is True
    assert (model_dir / "components" / "bm25" / "shelflab-model.json").is_file()
    assert (index_dir / "components" / "bm25" / "shelflab-index.json").is_file()
    assert pl.read_parquet(index_dir / "items.parquet").columns == ["item_id", "text"]


def test_reranks_top_candidates_and_appends_first_stage_below(opened, deep_run, data):
    model = opened[0]
    first = model.components["bm25"].retrieve(data[1], 30)
    for qid in deep_run["query_id"].unique().to_list():
        ours = deep_run.filter(pl.col("query_id") == qid).sort("rank")
        theirs = first.filter(pl.col("query_id") == qid).sort("rank")
        # the same top-20 set, reordered; ranks 21.. in first-stage order
        assert set(ours["item_id"][:20]) == set(theirs["item_id"][:20])
        assert ours["item_id"][20:].to_list() == theirs["item_id"][20:].to_list()


def test_score_pairs_match_retrieve_scores(opened, deep_run, data):
    model = opened[0]
    head = deep_run.filter(pl.col("rank") <= 20).sort("query_id", "item_id")
    scores = model.score_pairs(data[1], head.select("query_id", "item_id"))
    assert len(scores) == head.height
    np.testing.assert_allclose(scores, head["score"].to_numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(InputError, match="not in the indexed catalog"):
        model.score_pairs(
            data[1], pl.DataFrame({"query_id": [head["query_id"][0]], "item_id": ["x"]})
        )


def test_reloaded_weights_are_identical(opened, trained):
    ours, theirs = opened[0]._ce.state_dict(), trained[0]._ce.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_valid_ndcg_recorded_and_reported(trained):
    model, calls = trained
    info = model.train_info
    valid = info["valid_ndcg@10"]
    assert info["epochs_run"] == SPEC["epochs"] and len(valid) == SPEC["epochs"] + 1
    assert valid[0] == info["first_stage_valid_ndcg@10"] > 0  # epoch 0: bm25 alone
    assert info["best_valid_ndcg@10"] == max(valid[1:]) == valid[info["best_epoch"]]
    assert calls == [(epoch, valid[epoch]) for epoch in range(1, SPEC["epochs"] + 1)]
    assert all(0.0 <= v <= 1.0 for v in valid)
    assert len(info["loss"]) == SPEC["epochs"] and all(np.isfinite(info["loss"]))
    assert 0 < info["train_queries"] <= SPEC["max_train_queries"]
    assert info["train_positives"] < info["train_pairs"]
    assert info["valid_queries"] > 0


def test_best_epoch_weights_are_kept(opened, trained, data):
    model, info = opened[0], trained[0].train_info
    assert 1 <= info["best_epoch"] <= info["epochs_run"]
    train = data[0]
    vq = judged_queries(train.valid_queries, train.valid_qrels)
    qrels = train.valid_qrels.filter(pl.col("query_id").is_in(vq["query_id"].implode()))
    run = model.retrieve(vq, SPEC["candidates"])  # what fit reranked after each epoch
    assert score_run(run, qrels) == pytest.approx(info["best_valid_ndcg@10"], abs=1e-6)


def test_fusion_weight_chosen_on_valid(ctx, data, items, tmp_path, reopen):
    model = create("ce", {**TINY, "fusion_weight": None}, own_ctx(ctx))
    model.fit(data[0])
    info = model.train_info
    grid = info["valid_ndcg@10_by_fusion_weight"]
    assert list(grid) == [f"{w / 10:.1f}" for w in range(11)]
    # w = 0 is the first stage's order, w = 1 the cross-encoder's alone
    assert grid["0.0"] == pytest.approx(info["first_stage_valid_ndcg@10"], abs=1e-9)
    assert grid["1.0"] == pytest.approx(info["best_valid_ndcg@10"], abs=1e-9)
    w = info["fusion_weight"]
    assert model.weight == w and grid[f"{w:.1f}"] == max(grid.values()) >= grid["0.0"]
    assert all(grid[k] < grid[f"{w:.1f}"] for k in grid if float(k) > w)  # highest on ties
    train = data[0]
    vq = judged_queries(train.valid_queries, train.valid_qrels)
    qrels = train.valid_qrels.filter(pl.col("query_id").is_in(vq["query_id"].implode()))
    # retrieve uses the chosen weight (the model reranks with its own built first stage)
    opened = reopen(model, ctx, items, tmp_path)[0]
    try:
        run = opened.retrieve(vq, TINY["candidates"])
    finally:
        opened.close()
    assert score_run(run, qrels) == pytest.approx(grid[f"{w:.1f}"], abs=1e-6)


def test_early_stopping_and_fusion_use_a_fixed_valid_sample(ctx, data, items, tmp_path, reopen):
    """`eval_max_queries`: every valid figure of the fit (epoch 0, each epoch, the fusion grid)
    is over the same seeded sample of judged valid queries."""
    spec = {**TINY, "fusion_weight": None, "eval_max_queries": 5, "seed": 7}
    model = create("ce", spec, own_ctx(ctx))
    model.fit(data[0])
    info = model.train_info
    train = data[0]
    vq = judged_queries(train.valid_queries, train.valid_qrels)
    assert vq.height > 5 and info["valid_queries"] == 5
    sample = vq.sample(n=5, seed=7).sort("query_id")
    qrels = train.valid_qrels.filter(pl.col("query_id").is_in(sample["query_id"].implode()))
    opened = reopen(model, ctx, items, tmp_path)[0]
    try:
        first = opened.components["bm25"].retrieve(sample, TINY["candidates"])
        run = opened.retrieve(sample, TINY["candidates"])
    finally:
        opened.close()
    assert info["first_stage_valid_ndcg@10"] == pytest.approx(score_run(first, qrels), abs=1e-9)
    grid = info["valid_ndcg@10_by_fusion_weight"]
    assert score_run(run, qrels) == pytest.approx(grid[f"{info['fusion_weight']:.1f}"], abs=1e-6)


def test_training_is_deterministic(ctx, data, items):
    train = data[0]
    no_valid = TrainData(items, train.train_queries, train.train_qrels)
    fits = []
    for _ in range(2):
        model = create("ce", TINY, own_ctx(ctx))
        model.fit(no_valid)
        fits.append(model)
    a, b = (m._ce.state_dict() for m in fits)
    assert all(torch.equal(a[k], b[k]) for k in a)
    drop = {"seconds", "train_pairs_per_s"}  # timings
    assert {k: v for k, v in fits[0].train_info.items() if k not in drop} == {
        k: v for k, v in fits[1].train_info.items() if k not in drop
    }
    assert fits[0].train_info["valid_ndcg@10"] == [] and fits[0].train_info["best_epoch"] == 1


def test_progress_hook_exception_ends_training(ctx, data):
    class Pruned(Exception):
        pass

    calls = []

    def hook(step, value):
        calls.append(step)
        raise Pruned

    model = create("ce", {**TINY, "epochs": 3}, own_ctx(ctx, **{ON_VALID: hook}))
    with pytest.raises(Pruned):
        model.fit(data[0])
    assert calls == [1]


def test_untrained_mode_uses_a_saved_cross_encoder(opened, ctx, data, items, tmp_path):
    model, model_dir, _ = opened
    spec = {**SPEC, "train": False, "model": str(model_dir / "cross_encoder")}
    again = create("ce2", spec, own_ctx(ctx))
    again.fit(data[0])  # trains nothing
    assert again.train_info == {"trained": False, "model": spec["model"]}
    again.build_index(items, tmp_path)
    pairs = opened[0].retrieve(data[1].head(2), 5).select("query_id", "item_id")
    np.testing.assert_allclose(
        again.score_pairs(data[1], pairs), model.score_pairs(data[1], pairs), rtol=1e-5, atol=1e-5
    )
    bare = create("ce3", {**SPEC, "train": False}, own_ctx(ctx))  # MiniLM: no trained head
    with pytest.raises(ConfigError, match="not a trained cross-encoder"):
        bare.fit(data[0])


def test_refuses_training_without_positive_pairs(ctx, data, items, refuses):
    train = data[0]
    model = create("ce", SPEC, own_ctx(ctx))
    refuses(model, train, items)
    # positives only on items outside the catalog: nothing to learn from
    small = items.head(50)
    outside = train.train_qrels.filter(~pl.col("item_id").is_in(small["item_id"].implode()))
    with pytest.raises(InputError, match="no positive \\(query, item\\) pair"):
        model.fit(TrainData(small, train.train_queries, outside))
    assert model._ce is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"first_stage": "nope"}, "'first_stage' = 'nope' is not a component"),
        ({"components": {}}, "components' is empty"),
        (
            {"components": {"x": {"family": "cross_encoder"}}, "first_stage": "x"},
            "itself a cross_encoder",
        ),
        ({"lr": 0.0}, "param 'lr'"),
        ({"negatives": 0}, "param 'negatives'"),
        ({"max_train_queries": 0}, "param 'max_train_queries'"),
        ({"eval_max_queries": 0}, "param 'eval_max_queries'"),
        ({"patience": -1}, "param 'patience'"),
        # the old name of `patience`: refused, and the message lists the new key
        ({"early_stopping": 1}, "unknown param 'early_stopping' .*known: .*patience"),
        ({"warmup_ratio": 1.5}, "param 'warmup_ratio'"),
        ({"train": "yes"}, "param 'train'"),
        ({"temperature": 1.0}, "unknown param 'temperature'"),
    ],
)
def test_bad_specs(ctx, spec, message):
    with pytest.raises(ConfigError, match=message):
        create("ce", {**SPEC, **spec}, ctx)


def test_unfitted_model_cannot_be_saved_or_retrieve(ctx, tmp_path, data):
    model = create("ce", SPEC, ctx)
    with pytest.raises(ConfigError, match="call fit before save"):
        model.save(tmp_path)
    with pytest.raises(ConfigError, match="call build_index or open_index first"):
        model.retrieve(data[1], 10)
