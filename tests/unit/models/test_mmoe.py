"""mmoe: the network's gates, candidates and pair features by hand, the attribute and rating
labels and scores, training on the real Beauty excerpt through the pipeline's life cycle (save,
index, open), and the rating task on the real All_Beauty review excerpt."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from shelflab.errors import ConfigError
from shelflab.models import ModelContext, create
from shelflab.models.mmoe.features import (
    DENSE_FEATURES,
    candidates_run,
    dense_features,
    top_candidates,
)
from shelflab.models.mmoe.labels import (
    mean_rating_logit,
    rating_labels,
    rating_range,
    rating_scores,
    shares_attribute,
    target_ratings,
)
from shelflab.models.mmoe.losses import multitask_loss
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
    got = shares_attribute(attrs, cand, np.array([1, 3]))
    assert got.tolist() == [[True, True, False, False], [False, False, False, False]]


def test_rating_labels_and_scores_by_hand():
    scale = rating_range([1.0, 5.0, float("nan"), 3.0], 1.0, 5.0)
    assert scale == {"lo": 1.0, "hi": 5.0, "mean": 3.0}  # the missing rating plays no part
    with pytest.raises(
        ConfigError, match=r"1 training rating\(s\) outside rating_scale \[1, 5\], e.g. 10"
    ):
        rating_range([10.0, 5.0], 1.0, 5.0)
    # row 0: the next item is the second candidate; row 1: the first stage missed it
    is_next = np.array([[False, True, False], [False, False, False]])
    got = rating_labels(is_next, [4.0, 2.0], scale)
    np.testing.assert_array_equal(np.isnan(got), [[True, False, True], [True, True, True]])
    assert got[0, 1] == pytest.approx(0.75)  # (4 - 1) / (5 - 1)
    # a logit of 0 predicts the middle of the scale, 3 stars; the truth is 4 and 2
    labels = np.array([[np.nan, 0.75], [0.25, np.nan]])
    out = rating_scores(labels, np.zeros((2, 2)), scale)
    assert out == {"rating.rmse": 1.0, "rating.mae": 1.0, "rating.rmse_train_mean": 1.0,
                   "rating.users": 2.0}  # fmt: skip
    out = rating_scores(labels, np.array([[9.0, np.log(3.0)], [-np.log(3.0), 9.0]]), scale)
    assert out["rating.rmse"] == pytest.approx(0.0) and out["rating.mae"] == pytest.approx(0.0)
    assert rating_scores(np.full((1, 2), np.nan), np.zeros((1, 2)), scale) == {}


def test_mean_rating_logit_predicts_the_mean():
    scale = {"lo": 1.0, "hi": 5.0, "mean": 4.0}
    assert 1 + 4 / (1 + np.exp(-mean_rating_logit(scale))) == pytest.approx(4.0)
    assert mean_rating_logit({**scale, "mean": 5.0}) == pytest.approx(np.log(999))  # clipped


def test_multitask_loss_by_hand():
    import torch.nn.functional as F

    logits = torch.tensor(
        [[[2.0, 0.5], [0.0, -1.0], [9.0, 9.0]], [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]],
        requires_grad=True,
    )
    cand = torch.tensor([[4, 7, -1], [3, 5, 6]])  # row 0: the third column is padding
    labels = {
        "next_item": torch.tensor([[False, True, False], [False, False, False]]),
        "rating": torch.tensor([[float("nan"), 0.75, float("nan")], [float("nan")] * 3]),
    }
    got = multitask_loss(logits, cand, labels, ["next_item", "rating"], 0.5)
    # row 1's next item is no candidate: only row 0 ranks, over its two real candidates
    ranking = -F.log_softmax(torch.tensor([2.0, 0.0]), dim=0)[1]
    rating = F.binary_cross_entropy_with_logits(torch.tensor([-1.0]), torch.tensor([0.75]))
    assert got.requires_grad
    assert float(got) == pytest.approx(float(ranking + 0.5 * rating), rel=1e-6)
    none = {k: torch.zeros_like(v) if k == "next_item" else torch.full_like(v, float("nan"))
            for k, v in labels.items()}  # fmt: skip
    assert not multitask_loss(logits, cand, none, ["next_item", "rating"], 0.5).requires_grad


def test_candidates_run_keeps_the_top_k_real_candidates():
    cand = np.array([[2, 0, -1], [1, 2, 0]])
    score = np.array([[0.1, 0.9, 5.0], [0.3, 0.3, 0.2]])
    run = candidates_run(["q1", "q2"], cand, score, ["a", "b", "c"], 2)
    assert run.select("query_id", "item_id", "rank").rows() == [
        ("q1", "a", 1),
        ("q1", "c", 2),
        ("q2", "c", 1),
        ("q2", "b", 2),
    ]  # the padding's score plays no part; q2's tie goes to the larger id (trec_eval's order)


def test_target_ratings_follow_the_training_sequences_order():
    queries = pl.DataFrame({"query_id": ["u2@train", "u1@train", "u3@train"]})
    qrels = pl.DataFrame(
        {"query_id": ["u1@train", "u2@train", "u9@train"], "item_id": ["a", "b", "c"],
         "grade": [1.0, 1.0, 1.0], "rating": [4.0, None, 1.0]}
    )  # fmt: skip
    got = target_ratings(queries, qrels)  # u3 has no qrel: left out, as training_sequences does
    assert len(got) == 2 and np.isnan(got[0]) and got[1] == 4.0
    with pytest.raises(ConfigError, match="task 'rating' needs the rating"):
        target_ratings(queries, qrels.drop("rating"))


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


REVIEWS = Path(__file__).parents[3] / "data" / "sample" / "amazon"


@pytest.fixture(scope="module")
def all_beauty_reviews():
    """Review-file sequences of the real All_Beauty excerpt (k-core 1: 118 users with 3+ items):
    TrainData whose qrels carry the rating of each next item."""
    from shelflab.data_io.sequence_dataset import load_sequence_dataset
    from shelflab.models.base import TrainData
    from shelflab.protocols.leave_one_out import leave_one_out
    from shelflab.quarantine import Quarantine

    ds = load_sequence_dataset("amazon_reviews", REVIEWS, sequences="All_Beauty_5.sample.json.gz",
                               k_core=1, quarantine=Quarantine(), relabel_seed=0)  # fmt: skip
    task = leave_one_out(ds.sequences, quarantine=Quarantine())
    return TrainData(ds.items, *task.part("train"), *task.part("valid")), task


def test_rating_task_on_real_review_sequences(
    tmp_path, all_beauty_reviews, seq_ctx, save_index_open
):
    train, task = all_beauty_reviews
    assert train.train_qrels["rating"].is_between(1.0, 5.0).all()
    spec = {**SPEC, "tasks": ["next_item", "rating"], "item_to_item": "", "epochs": 4,
            "candidates": 20, "train_candidates": 20}  # fmt: skip
    spec["components"] = {"two_tower": SPEC["components"]["two_tower"]}
    model = create("mmoe", spec, seq_ctx)
    model.fit(train)
    assert model.ratings["lo"] >= 1.0 and model.ratings["hi"] <= 5.0
    fit = model.fit_valid
    assert {"next_item.ndcg_at_10", "rating.rmse", "rating.mae", "rating.rmse_train_mean"} <= set(
        fit
    )
    assert 0 < fit["rating.users"] <= train.valid_queries.height
    assert 0.0 <= fit["rating.mae"] <= fit["rating.rmse"] <= 4.0
    # the tower starts at the training mean: not worse than it (mid-scale would be ~1.8 stars
    # off on these mostly 5-star ratings)
    assert fit["rating.rmse"] <= fit["rating.rmse_train_mean"] + 0.05
    opened = save_index_open(model, train.items, tmp_path, seq_ctx)
    assert opened.ratings == model.ratings
    queries, _ = task.part("test")
    diag = opened.diagnostics(queries, 10)
    weights = [v for k, v in diag.items() if k.startswith("gate.rating.e")]
    assert len(weights) == 4 and sum(weights) == pytest.approx(1.0)
    assert diag["fit_valid.rating.rmse"] == fit["rating.rmse"]
    opened.close()


def test_rating_task_needs_rated_sequences(beauty_small, seq_ctx):
    train, _ = beauty_small  # S3-Rec sequences: no ratings
    spec = {**SPEC, "tasks": ["next_item", "rating"], "epochs": 1}
    with pytest.raises(ConfigError, match="review-file sequences"):
        create("mmoe", spec, seq_ctx).fit(train)
