"""RQ-VAE semantic IDs (by hand and on the real item texts), the semantic SASRec, and the
two-tower model with its Chroma index against exact search."""

import numpy as np
import polars as pl
import pytest

from shelflab.evaluation.harness import evaluate
from shelflab.models import create, load
from shelflab.models.rqvae import _collision_level, train_rqvae

RQ = {"levels": 2, "codes": 8, "latent": 8, "hidden": [32, 16], "beta": 0.25, "lr": 1e-2,
      "epochs": 100, "batch_size": 16, "seed": 0}  # fmt: skip


def test_collision_level_by_hand():
    codes = np.array([[1, 2], [1, 2], [0, 5], [1, 2], [0, 5], [3, 3]])
    level, stats = _collision_level(codes)
    assert level.tolist() == [0, 1, 0, 2, 1, 0]
    assert stats == {
        "items": 6, "distinct_code_tuples": 3, "items_in_collision": 5,
        "collision_rate": round(5 / 6, 4), "max_items_per_tuple": 3,
    }  # fmt: skip


def test_rqvae_ids_are_unique_and_separate_clusters():
    # four well-separated clusters of 20 points: the first level must tell them apart
    rng = np.random.default_rng(0)
    centres = np.eye(4, 16) * 5
    x = np.concatenate([c + 0.05 * rng.standard_normal((20, 16)) for c in centres])
    ids = train_rqvae(x.astype(np.float32), RQ)
    assert ids.codes.shape == (80, 3)
    assert len({tuple(r) for r in ids.codes}) == 80  # the collision level makes them unique
    first = ids.codes[:, 0].reshape(4, 20)
    for cluster in first:  # each cluster's items share few first-level codes ...
        assert len(set(cluster)) <= 3
    groups = [set(c) for c in first]  # ... and no code is shared across clusters
    assert all(not (a & b) for i, a in enumerate(groups) for b in groups[i + 1 :])
    # the decoder learned: far below predicting the mean vector
    assert ids.stats["reconstruction_mse"] < 0.2 * float(((x - x.mean(0)) ** 2).mean())
    assert 0 < ids.stats["codebook_usage"][0] <= 1


def test_semantic_sasrec_trains_and_round_trips(tmp_path, beauty_small, seq_ctx):
    beauty_train, beauty_task = beauty_small
    spec = {"dim": 16, "layers": 1, "maxlen": 20, "epochs": 2, "eval_every": 1,
            "train_batch_size": 256, "lr": 0.005, "device": "cpu", "rq_epochs": 10,
            "codes": 32, "latent": 16, "rq_hidden": 64}  # fmt: skip
    model = create("sasrec_semantic", spec, seq_ctx)
    model.fit(beauty_train)
    stats = model.rq_stats
    assert model.codes.shape == (beauty_train.items.height, 4)
    assert len({tuple(r) for r in model.codes}) == beauty_train.items.height
    # the excerpt's item texts are attribute lists, many identical: collisions are expected
    assert stats["distinct_code_tuples"] < beauty_train.items.height
    assert 0 < stats["collision_rate"] < 1
    # items with the same codes (minus the collision level) share all but one embedding
    assert model.net.code_emb.weight.shape[0] == int((model.codes.max(0) + 1).sum())
    model.save(tmp_path)
    again = load(tmp_path, seq_ctx)
    queries, _ = beauty_task.part("test")
    hist = [model.encode(h) for h in queries["history"].head(10).to_list()]
    np.testing.assert_allclose(again.score(hist), model.score(hist), rtol=1e-5, atol=1e-5)
    assert again.diagnostics(queries, 10)["rqvae_collision_rate"] == stats["collision_rate"]


def test_two_tower_chroma_matches_exact(tmp_path, beauty_small, seq_ctx, save_index_open):
    beauty_train, beauty_task = beauty_small
    spec = {"dim": 32, "epochs": 2, "device": "cpu", "candidates": 100}
    model = create("two_tower", spec, seq_ctx)
    model.fit(beauty_train)
    assert [e["epoch"] for e in model.history_log] == [1, 2]
    assert model.history_log[1]["loss"] < model.history_log[0]["loss"]
    opened = save_index_open(model, beauty_train.items, tmp_path, seq_ctx)
    queries, qrels = beauty_task.part("test")
    queries = queries.head(200)
    ann = opened.retrieve(queries, 20)
    exact = opened._exact_run(queries, 20)
    # no history item is returned, every query gets 20 items
    hist = queries.select("query_id", "history")
    assert (
        ann.join(hist, on="query_id")
        .filter(pl.col("history").list.contains(pl.col("item_id")))
        .is_empty()
    )
    assert (ann.group_by("query_id").len()["len"] == 20).all()
    overlap = ann.join(exact, on=["query_id", "item_id"]).height / exact.height
    assert overlap > 0.9
    assert opened.diagnostics(queries, 20)["chroma_recall_vs_exact"] > 0.9
    qrels = qrels.join(queries.select("query_id"), on="query_id", how="semi")
    assert evaluate(qrels, ann, ["hit@20"], 1.0).means["hit@20"] >= 0
    opened.close()


def test_seq_rerank_reorders_the_candidates(tmp_path, beauty_small, seq_ctx, save_index_open):
    train, task = beauty_small
    spec = {
        "components": {
            "two_tower": {"family": "two_tower", "dim": 32, "epochs": 1, "device": "cpu"},
            "itemknn": {"family": "itemknn"},
        },
        "first_stage": "two_tower",
        "candidates": 30,
    }
    model = create("seq_rerank", spec, seq_ctx)
    model.fit(train)
    opened = save_index_open(model, train.items, tmp_path, seq_ctx)
    queries, _ = task.part("test")
    queries = queries.head(50)
    run = opened.retrieve(queries, 10)
    first = opened.components["two_tower"].retrieve(queries, 30)
    # every result is a first-stage candidate, in the reranker's order
    assert run.join(first, on=["query_id", "item_id"], how="anti").is_empty()
    knn = opened.components["itemknn"]
    for qid, hist in queries.select("query_id", "history").head(10).iter_rows():
        got = run.filter(query_id=qid).sort("rank")
        scores = knn.score([knn.encode(hist)])[0]
        expected = [scores[knn.index_of[i]] for i in got["item_id"]]
        assert got["score"].to_list() == pytest.approx(expected)
        assert expected == sorted(expected, reverse=True)
    opened.close()


def test_in_batch_loss_is_logq_corrected(beauty_small, seq_ctx):
    """The training loss is the in-batch softmax over cos / temperature - log(item frequency)
    (Yi et al. 2019: in-batch negatives come in proportion to popularity), an item repeated in
    the batch never a negative of itself; worked here in numpy from the towers' vectors."""
    import torch

    from shelflab.models.sequential import next_item_pairs, training_sequences

    spec = {"family": "two_tower", "use_text": False, "epochs": 1, "device": "cpu",
            "temperature": 0.1}  # fmt: skip
    model = create("two_tower", spec, seq_ctx)
    model.fit(beauty_small[0])  # eval mode after fit: no dropout
    hist, target = next_item_pairs(
        [model.encode(s) for s in training_sequences(beauty_small[0])], 20
    )
    target = target + 1  # item-table rows, as the model trains on them
    freq = np.bincount(target, minlength=len(model.item_ids) + 1) / len(target)
    batch = np.argsort(-freq[target], kind="stable")[:64]  # popular targets: repeats in the batch
    h, t = hist[batch], target[batch]
    assert len(set(t.tolist())) < len(t)
    with torch.no_grad():
        items = model.net.items()
        users = model.net.users(torch.as_tensor(h), items).numpy()
        vecs = items.numpy()[t]
    logits = users @ vecs.T / 0.1 - np.log(freq[t])[None, :]
    logits[(t[None, :] == t[:, None]) & ~np.eye(len(t), dtype=bool)] = -np.inf
    top = logits.max(axis=1)
    logsumexp = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
    expected = np.mean(logsumexp - np.diag(logits))  # cross-entropy of the diagonal positives
    frozen = torch.optim.SGD(model.net.parameters(), lr=0.0)
    assert model._step(frozen, h, t) == pytest.approx(expected, rel=1e-4)
    model.params["logq_correction"] = False
    assert model._step(frozen, h, t) != pytest.approx(expected, rel=1e-4)
