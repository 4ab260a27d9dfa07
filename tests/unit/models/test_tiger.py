"""TIGER: the trie of valid tuples and the constrained beam search by hand (the best valid
tuples, in log-probability order, never an invalid one even when the model prefers it); the
decoder's shared cross-attention equals per-beam decoding; on the real excerpt the model trains
(loss falls), ranks the whole catalog with its generated items first and the rest in the stated
fallback order, logs an invalid-tuple rate of 0, honours its time budget and round-trips."""

import math

import numpy as np
import pytest
import torch

from shelflab.errors import InputError
from shelflab.evaluation.harness import evaluate
from shelflab.models import create
from shelflab.models.tiger.trie import CodeTrie, decode

CODES = np.array([[0, 0], [0, 1], [1, 0]])  # three items; (1, 1) is no item


def test_trie_tables_and_membership_by_hand():
    trie = CodeTrie(CODES)
    assert trie.sizes == [2, 2]
    assert trie.tables[0].tolist() == [[0, 1]]  # root -> prefix nodes (0,) and (1,)
    assert trie.tables[1].tolist() == [[0, 1], [2, -1]]  # (1,) has no child 1
    assert trie.leaf_item.tolist() == [0, 1, 2]
    assert trie.is_item(np.array([[0, 0], [1, 0], [1, 1], [0, 1]])).tolist() == [
        True, True, False, True,
    ]  # fmt: skip
    with pytest.raises(InputError, match="share one semantic-ID tuple"):
        CodeTrie(np.array([[0, 1], [0, 1]]))


def _step(level0: list[float], level1: list[float]):
    """A fake model: the same logits for every query and prefix, per level."""

    def step(prefix: torch.Tensor) -> torch.Tensor:
        logits = level0 if prefix.shape[1] == 0 else level1
        return torch.tensor(logits).expand(prefix.shape[0], -1)

    return step


def test_beam_search_returns_the_best_valid_tuples_by_hand():
    # level 0: P(0) = 1/4, P(1) = 3/4; level 1: P(0) = P(1) = 1/2
    beams = decode(_step([0.0, math.log(3)], [0.0, 0.0]), CodeTrie(CODES), 2, 5, "cpu")
    assert beams.items[:, 0].tolist() == [2, 2]  # (1, 0): 3/4 * 1/2
    assert sorted(beams.items[0, 1:3].tolist()) == [0, 1]  # (0, 0), (0, 1): 1/8 each
    # only three valid tuples: the rest of the (at most 5) beams is empty
    assert beams.items.shape[1] <= 5 and (beams.items[:, 3:] == -1).all()
    assert beams.logprob[0, :3].tolist() == pytest.approx(
        [math.log(3 / 8), math.log(1 / 8), math.log(1 / 8)]
    )
    assert torch.isinf(beams.logprob[0, 3:]).all() and beams.invalid == 0
    assert beams.first_logprob[0].exp().tolist() == pytest.approx([0.25, 0.75])


def test_the_constraint_overrides_a_model_that_prefers_an_invalid_tuple():
    # unconstrained, the best tuple is (1, 1), which no item has
    step = _step([0.0, 5.0], [0.0, 5.0])
    beams = decode(step, CodeTrie(CODES), 1, 1, "cpu")
    assert beams.items.tolist() == [[2]] and beams.invalid == 0
    expected = math.log(math.exp(5) / (1 + math.exp(5))) + math.log(1 / (1 + math.exp(5)))
    assert beams.logprob.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("per_item", [False, True])
def test_shared_cross_attention_equals_decoding_each_beam_alone(per_item):
    from shelflab.models.tiger.net import TigerNet

    torch.manual_seed(0)
    net = TigerNet([4, 5, 3], maxlen=6, dim=16, layers=2, heads=2, dropout=0.0,
                   per_item=per_item).eval()  # fmt: skip
    history = torch.tensor([[[-1, -1, -1], [1, 2, 0], [3, 4, 2]],
                            [[0, 0, 0], [2, 1, 1], [1, 1, 0]]])  # fmt: skip
    prefix = torch.tensor([[0, 1], [2, 3], [1, 0], [3, 4], [0, 0], [2, 2]])  # 3 beams each
    with torch.no_grad():
        memory, pad = net.encode(history)
        together = net.next_logits(memory, pad, prefix)
        alone = torch.cat([
            net.next_logits(memory[q : q + 1], pad[q : q + 1], prefix[r : r + 1])
            for r, q in enumerate([0, 0, 0, 1, 1, 1])
        ])  # fmt: skip
    assert together.shape == (6, 3)
    assert torch.allclose(together, alone, atol=1e-5)
    # the padding item changes nothing: the same history without it encodes the same
    with torch.no_grad():
        cut_memory, cut_pad = net.encode(history[:1, 1:])
        cut = net.next_logits(cut_memory, cut_pad, prefix[:1])
    assert torch.allclose(cut, together[:1], atol=1e-5)


SMALL = {"dim": 32, "layers": 1, "heads": 2, "maxlen": 10, "epochs": 3, "eval_every": 1,
         "patience": 3, "lr": 0.003, "dropout": 0.0, "beams": 10, "history_tokens": "item",
         "levels": 2, "codes": 32, "rq_epochs": 20, "device": "cpu"}  # fmt: skip


@pytest.fixture(scope="module")
def fitted(beauty_small, seq_ctx):
    train, task = beauty_small
    model = create("tiger", SMALL, seq_ctx)
    model.fit(train)
    return model, train, task


def test_tiger_trains_ranks_the_catalog_and_round_trips(fitted, seq_ctx, save_index_open, tmp_path):
    model, train, task = fitted
    losses = [h["loss"] for h in model.history_log]
    assert len(losses) == 3 and losses[-1] < losses[0]
    curve = model.training_curve()
    assert set(curve["fit_valid_ndcg_at_10"]) == {1, 2, 3}
    queries, qrels = task.part("test")
    run = model.retrieve(queries, 50)
    assert run.group_by("query_id").len()["len"].min() == 50  # beyond the beams: the fallback
    generated = run.filter(run["score"] > 500)  # BEAM_BONUS + a log-probability
    per_query = generated.group_by("query_id").len()["len"]
    assert per_query.max() <= 10 and per_query.mean() > 8  # history items are masked out
    diag = model.diagnostics(queries, 50)
    assert diag["invalid_tuple_rate"] == 0.0 and diag["generated_per_query"] == 10
    assert 0.0 <= diag["fit_unconstrained_invalid_rate"] <= 1.0
    assert diag["fit_epochs_run"] == 3 and diag["fit_train_seconds"] > 0
    assert evaluate(qrels, run, ["ndcg@10"]).means["ndcg@10"] > 0
    reopened = save_index_open(model, train.items, tmp_path, seq_ctx)
    again = reopened.retrieve(queries, 50)
    assert again["item_id"].to_list() == run["item_id"].to_list()
    assert np.allclose(again["score"].to_numpy(), run["score"].to_numpy())


def test_fallback_follows_the_first_code_then_popularity(fitted):
    from shelflab.models.tiger.model import BEAM_BONUS

    model, _, task = fitted
    histories = [model.encode(h) for h in task.part("test")[0]["history"].to_list()[:5]]
    scores = model.score(histories)
    with torch.no_grad():
        memory, pad = model.net.encode(model._history_codes(model._rows(histories)))
        first = torch.log_softmax(model.net.next_logits(memory, pad, memory.new_zeros(5, 0,
                                  dtype=torch.long)), -1).numpy()  # fmt: skip
    for row in range(5):
        rest = np.flatnonzero(scores[row] < BEAM_BONUS / 2)
        order = rest[np.argsort(-scores[row, rest], kind="stable")]
        code_logp = first[row, model.codes[order, 0]]
        assert np.all(np.diff(code_logp) <= 1e-5)  # first codes in falling probability
        same = model.codes[order, 0] == model.codes[order[0], 0]
        assert np.all(np.diff(model.popularity[order[same]]) <= 0)  # then popularity


def test_the_time_budget_stops_training(beauty_small, seq_ctx):
    train, _ = beauty_small
    model = create("tiger", {**SMALL, "epochs": 50, "max_train_minutes": 1e-4}, seq_ctx)
    model.fit(train)
    assert model.fit_info["budget_hit"] and model.fit_info["epochs_run"] == 1
    assert len(model.history_log) == 1  # the weights it stops with are validated once
