"""mmoe: the network's gates, candidates and pair features by hand, the attribute labels, and
training on the real Beauty excerpt through the pipeline's life cycle (save, index, open)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from shelflab.errors import ConfigError
from shelflab.models import ModelContext, create
from shelflab.models.mmoe.features import DENSE_FEATURES, dense_features, top_candidates
from shelflab.models.mmoe.model import _shares_attribute
from shelflab.models.mmoe.net import MMoENet


@pytest.mark.parametrize(("tasks", "gates"), [(2, 2), (2, 1), (1, 1)])
def test_each_gate_is_a_distribution_over_the_shared_experts(tasks, gates):
    torch.manual_seed(0)
    text = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    net = MMoENet(6, text, len(DENSE_FEATURES), dim=4, experts=3, expert_dim=5, hidden=8,
                  tasks=tasks, gates=gates, dropout=0.0)  # fmt: skip
    hist = torch.tensor([[0, 1, 2], [0, 0, 3]])
    cand = torch.tensor([[4, 5], [1, 0]])
    logits, weights = net(hist, cand, torch.zeros(2, 2, len(DENSE_FEATURES)))
    assert logits.shape == (2, 2, tasks) and weights.shape == (2, 2, gates, 3)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, gates))
    # the towers read the same experts: with one gate and two tasks, only the towers differ
    assert len(net.experts) == 3 and len(net.towers) == tasks


def test_top_candidates_and_dense_features_by_hand():
    scores = np.array([[0.1, 0.9, -np.inf, 0.5], [0.3, 0.2, 0.1, -np.inf]])
    cand = top_candidates(scores, 3)
    assert cand.tolist() == [[1, 3, 0], [0, 1, 2]]
    assert top_candidates(scores, 4)[0].tolist() == [1, 3, 0, -1]  # -inf is never a candidate
    cand = np.array([[1, 3, -1]])
    ranks = np.array([[1.0, 2.0, 3.0]])
    i2i = np.array([[0.0, 2.0, 0.0, 4.0]])
    pop = np.array([0.0, 0.5, 0.25, 1.0])
    unit = np.eye(4)
    f = dense_features(cand, ranks, scores[:1], i2i, pop, unit, [[1, 3]])
    assert f.shape == (1, 3, len(DENSE_FEATURES))
    np.testing.assert_allclose(f[0, 0], [0.9, 1.0, 0.5, 0.5, 0.5])  # i2i over the best (4)
    np.testing.assert_allclose(f[0, 1], [0.5, 1 / np.log2(3), 1.0, 1.0, 0.5])
    assert (f[0, 2] == 0).all()  # padding


def test_attribute_labels_by_hand():
    # items 0..3 with attributes {A}, {A, B}, {C}, {}
    attrs = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float))
    cand = np.array([[0, 1, 2, -1], [3, 2, 0, 1]])
    got = _shares_attribute(attrs, cand, np.array([1, 3]))
    assert got.tolist() == [[True, True, False, False], [False, False, False, False]]


def test_params_are_checked():
    seq_ctx = ModelContext()
    with pytest.raises(ConfigError, match="tasks must start with 'next_item'"):
        create("mmoe", {"tasks": ["attribute", "next_item"]}, seq_ctx)
    with pytest.raises(ConfigError, match="unknown task"):
        create("mmoe", {"tasks": ["next_item", "rating_of_the_moon"]}, seq_ctx)
    with pytest.raises(ConfigError, match="item_to_item = 'two_tower'"):
        create("mmoe", {"item_to_item": "two_tower"}, seq_ctx)


SPEC = {
    "components": {
        "two_tower": {"family": "two_tower", "dim": 32, "epochs": 2, "device": "cpu"},
        "itemknn": {"family": "itemknn"},
    },
    "candidates": 30,
    "train_candidates": 20,
    "epochs": 3,
    "device": "cpu",
}


def test_mmoe_trains_round_trips_and_reranks_the_candidates(
    tmp_path, beauty_small, seq_ctx, save_index_open
):
    train, task = beauty_small
    assert train.items["attributes"].list.len().sum() > 0  # the excerpt's brands/categories
    model = create("mmoe", SPEC, seq_ctx)
    model.fit(train)
    assert [h["epoch"] for h in model.history_log][:1] == [1]
    assert set(model.fit_valid) == {"next_item.ndcg_at_10", "attribute.auc"}
    assert 0.5 < model.fit_valid["attribute.auc"] <= 1.0  # the attribute task learned something
    opened = save_index_open(model, train.items, tmp_path, seq_ctx)
    queries, _ = task.part("test")
    queries = queries.head(50)
    run = opened.retrieve(queries, 10)
    first = opened.components["two_tower"].retrieve(queries, 30)
    assert run.join(first, on=["query_id", "item_id"], how="anti").is_empty()
    assert run.group_by("query_id").len()["len"].max() == 10
    (tmp_path / "again").mkdir()
    again = save_index_open(opened, train.items, tmp_path / "again", seq_ctx)
    assert again.retrieve(queries, 10).equals(run)  # the saved weights score the same
    diag = opened.diagnostics(queries, 10)
    for gate in ("next_item", "attribute"):
        weights = [v for k, v in diag.items() if k.startswith(f"gate.{gate}.e")]
        assert len(weights) == 4 and sum(weights) == pytest.approx(1.0)
    assert diag["fit_valid.attribute.auc"] == model.fit_valid["attribute.auc"]
    opened.close()
    again.close()


def test_single_task_single_gate_ablation(beauty_small, seq_ctx):
    train, _ = beauty_small
    model = create(
        "mmoe", {**SPEC, "tasks": ["next_item"], "gates": "shared", "epochs": 1}, seq_ctx
    )
    model.fit(train)
    assert len(model.net.gates) == 1 and len(model.net.towers) == 1
    assert set(model.fit_valid) == {"next_item.ndcg_at_10"}
