"""biencoder_ft on the 2,000-product Home Depot subset with real judged search terms: mining,
batching, a short real fine-tune, save/load/index/retrieve, early stopping, refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from shelflab.errors import ConfigError, InputError
from shelflab.models import create, load, open_model
from shelflab.models.biencoder_ft import ENCODER_DIR, duplicate_free_batches

SPEC = {
    "family": "biencoder_ft",
    "chroma": False,
    "cache": False,
    "max_seq_length": 32,
    "negatives": 1,
    "mine_depth": 20,
    "skip_top": 2,
    "train_batch_size": 16,
    "epochs": 1,
    "lr": 5e-5,
    "max_train_pairs": 96,
    "eval_every": 3,
    "eval_max_items": 400,  # the subset path: judged + mined items + seeded distractors
    "patience": 0,
}


@pytest.fixture(scope="module")
def data(split_judged):
    return split_judged()


@pytest.fixture(scope="module")
def bctx(ctx):
    return replace(ctx, extra={})


@pytest.fixture(scope="module")
def trained(bctx, data):
    calls = []
    ctx = replace(bctx, extra={"on_valid": lambda step, value: calls.append((step, value))})
    model = create("ft", SPEC, ctx)
    model.fit(data[0])
    return model, calls


def test_mined_rows_have_a_positive_and_hard_negatives(bctx, data):
    train = data[0]
    model = create("ft", {**SPEC, "negatives": 2}, bctx)
    from shelflab.models.training import built_models

    with built_models(model.params["miner"], train.items, bctx, "t") as miners:
        rows = model._mine(miners["bm25"], train.train_queries, train.train_qrels, train.items)
    assert len(rows) == 96  # max_train_pairs caps the real positives
    text = dict(zip(train.items["item_id"], train.items["text"], strict=True))
    grades = {(q, i): g for q, i, g in train.train_qrels.iter_rows()}
    for row in rows:
        assert len(row) == 2 + 2 + 2  # query, positive, 2 negatives, query_id, item_id
        qid, pos = row[-2], row[-1]
        assert grades[(qid, pos)] >= 1.0 and row[1] == text[pos]
        positives = {text[i] for (q, i), g in grades.items() if q == qid and g >= 1.0}
        assert not set(row[2:4]) & positives - {row[1]} or row[2] in positives


def test_batches_never_repeat_a_query_or_positive():
    rows = [["q", "p", f"q{j % 3}", f"i{j % 5}"] for j in range(30)]
    batches = duplicate_free_batches(rows, 4, seed=1, epoch=0)
    assert sum(len(b) for b in batches) == 30
    for b in batches:
        assert len({r[-2] for r in b}) == len(b) and len({r[-1] for r in b}) == len(b)
    assert (
        duplicate_free_batches(rows, 4, 1, 0) == batches
        and duplicate_free_batches(rows, 4, 1, 1) != batches
    )


def test_batches_group_texts_of_similar_length():
    lengths = np.random.default_rng(0).integers(1, 200, 512)
    rows = [["x" * int(n), "y", f"q{j}", f"i{j}"] for j, n in enumerate(lengths)]
    batches = duplicate_free_batches(rows, 8, seed=3, epoch=0)
    assert sorted(r[-2] for b in batches for r in b) == sorted(r[-2] for r in rows)

    def spread(groups):  # mean (longest - shortest) text in a batch
        return np.mean([max(len(r[0]) for r in g) - min(len(r[0]) for r in g) for g in groups])

    shuffled = [rows[i : i + 8] for i in range(0, len(rows), 8)]
    assert spread(batches) < 0.2 * spread(shuffled)


def test_fit_improves_valid_and_reports_progress(trained):
    model, calls = trained
    hist = model.history
    assert hist["pairs"] == 96 and hist["steps"] == hist["steps_per_epoch"] >= 6
    evals = [e["ndcg@10"] for e in hist["evals"]]
    assert 0 < hist["eval_items"] < 2000  # the subset, not the whole catalog
    assert evals[0] > 0.2  # the zero-shot MiniLM is already useful on these titles
    assert hist["best_valid_ndcg10"] == max(evals)
    assert [c[1] for c in calls] == evals and [c[0] for c in calls] == list(range(len(evals)))


def test_save_load_index_retrieve(trained, bctx, data, items, tmp_path, check_run):
    model, _ = trained
    model_dir, index_dir = tmp_path / "m", tmp_path / "i"
    model_dir.mkdir()
    index_dir.mkdir()
    model.save(model_dir)
    assert (model_dir / ENCODER_DIR / "model.safetensors").exists()
    assert not list((model_dir / ENCODER_DIR).rglob("*.bin"))
    assert json.loads((model_dir / "biencoder_ft.json").read_text())["pairs"] == 96
    load(model_dir, bctx).build_index(items, index_dir)
    reopened = open_model(model_dir, index_dir, bctx)
    try:
        run = reopened.retrieve(data[1], 10)
        check_run(run, 10)
        # the reopened weights are the fitted ones: same query embeddings
        import numpy as np

        texts = data[1]["text"].to_list()[:5]
        np.testing.assert_allclose(
            reopened.embed_queries(texts), model.embed_queries(texts), atol=1e-5
        )
    finally:
        reopened.close()


def test_early_stopping_keeps_best_weights(bctx, data):
    ctx = replace(bctx, extra={})
    spec = {**SPEC, "lr": 5e-3, "patience": 1, "max_train_pairs": 64, "eval_every": 1}
    model = create("ft", spec, ctx)  # a destructive lr: the zero-shot weights win
    model.fit(data[0])
    evals = model.history["evals"]
    assert len(evals) < 1 + model.history["steps_per_epoch"] // 2 + 1  # stopped early
    assert model.history["best_step"] == 0
    assert model.history["best_valid_ndcg10"] == evals[0]["ndcg@10"]


def test_progress_hook_can_stop_training(bctx, data):
    class Pruned(Exception):
        pass

    def prune(step, value):
        if step >= 1:
            raise Pruned

    model = create(
        "ft",
        {**SPEC, "max_train_pairs": 64, "eval_every": 1},
        replace(bctx, extra={"on_valid": prune}),
    )
    with pytest.raises(Pruned):
        model.fit(data[0])


def test_refusals(bctx, data):
    train = data[0]
    none_pos = train.train_qrels.with_columns(pl.lit(0.0).alias("grade"))
    with pytest.raises(InputError, match="no positive"):
        create("ft", SPEC, bctx).fit(replace(train, train_qrels=none_pos))
    bad_valid = train.valid_qrels.with_columns(pl.lit(0.0).alias("grade"))
    with pytest.raises(InputError, match="valid split has no positive"):
        create("ft", SPEC, bctx).fit(replace(train, valid_qrels=bad_valid))
    with pytest.raises(ConfigError, match="exactly one"):
        create("ft", {**SPEC, "miner": {"a": {"family": "bm25"}, "b": {"family": "bm25"}}})
    with pytest.raises(ConfigError, match="call fit before save"):
        create("ft", SPEC, bctx).save_extra(bctx.cache_dir)


def test_untrained_encoder_is_evaluated_once_per_process(bctx, data):
    from shelflab.models import encoders
    from shelflab.models.biencoder_ft import fit as biencoder_fit

    spec = {**SPEC, "max_train_pairs": 32, "epochs": 1, "eval_every": 0}
    create("ft", spec, bctx).fit(data[0])
    before = encoders.STATS["encoded_texts"]
    model = create("ft", {**spec, "lr": 1e-5}, bctx)
    model.fit(data[0])
    encoded = encoders.STATS["encoded_texts"] - before
    # only the end-of-epoch evaluation encodes the catalog; step 0 comes from the cache
    assert encoded == model.history["eval_items"] + model.history["eval_queries"]
    assert model.history["evals"][0]["ndcg@10"] in biencoder_fit._START_SCORES.values()
