"""SASRec: the network is causal; training learns (on the real excerpt, within a few epochs of a
tiny model: above chance and improving); the best valid weights are kept and are exactly what the
harness scores; save/load reproduces the scores; both losses train, deterministically."""

import numpy as np
import pytest

from shelflab.evaluation.harness import evaluate
from shelflab.models import ModelContext, create, load

SMALL = {"dim": 16, "layers": 1, "maxlen": 20, "epochs": 4, "eval_every": 1, "patience": 4,
         "train_batch_size": 256, "lr": 0.005, "dropout": 0.1, "device": "cpu"}  # fmt: skip


def test_network_is_causal():
    import torch

    from shelflab.models.sasrec_net import SASRecNet

    torch.manual_seed(0)
    net = SASRecNet(50, 8, 16, 2, 2, 0.0).eval()
    a = torch.tensor([[0, 0, 0, 5, 7, 9, 11, 13]])
    b = a.clone()
    b[0, -1] = 42  # change only the last item
    with torch.no_grad():
        ha, hb = net.encode(a), net.encode(b)
    assert torch.allclose(ha[0, :-1], hb[0, :-1], atol=1e-6)  # earlier positions unaffected
    assert not torch.allclose(ha[0, -1], hb[0, -1])
    assert torch.isfinite(ha).all()  # all-padding positions do not turn into NaN


def test_cut_batch_encodes_exactly_as_full_width():
    """Padding is masked out of attention and positions count from the right, so cutting a
    batch to its longest history (what training and scoring do) changes no hidden state."""
    import torch

    from shelflab.models.sasrec_net import SASRecNet
    from shelflab.models.sequential import cut_padding, left_padded

    torch.manual_seed(0)
    histories = [[3], [4, 8, 15], [], [16, 23, 42, 7, 9], [1, 2]]
    full = left_padded(histories, 12)
    cut = cut_padding(full)
    assert cut.shape == (5, 5)
    assert cut_padding(left_padded([[], []], 12)).shape == (2, 1)
    for heads in (1, 2):
        net = SASRecNet(50, 12, 16, 2, heads, 0.0).eval()
        with torch.no_grad():
            a = net.encode(torch.as_tensor(full))[:, -5:]
            b = net.encode(torch.as_tensor(cut))
        assert torch.allclose(a, b, atol=1e-5)
        # a history's state does not depend on the padding of the others in its batch
        with torch.no_grad():
            alone = net.encode(torch.as_tensor(left_padded([histories[1]], 12)))[0, -1]
        assert torch.allclose(alone, a[1, -1], atol=1e-5)


@pytest.fixture(scope="module")
def fitted(beauty_train):
    model = create("sasrec", SMALL, ModelContext())
    model.fit(beauty_train)
    return model


def test_training_learns_and_keeps_the_best(fitted):
    log = fitted.history_log
    assert [e["epoch"] for e in log] == [1, 2, 3, 4]
    assert log[-1]["loss"] < log[0]["loss"]
    best = max(e["valid_ndcg@10"] for e in log)
    assert best > log[0]["valid_ndcg@10"]
    # chance level of a random ranking over 7,812 items is ~0.0004
    assert best > 0.001


def test_valid_score_is_the_harness_score(fitted, beauty_task):
    queries, qrels = beauty_task.part("valid")
    run = fitted.retrieve(queries, 10)
    ndcg = evaluate(qrels, run, ["ndcg@10"], 1.0).means["ndcg@10"]
    assert ndcg == pytest.approx(max(e["valid_ndcg@10"] for e in fitted.history_log))


def test_save_load_reproduces_scores(tmp_path, fitted, beauty_task):
    fitted.save(tmp_path)
    again = load(tmp_path, ModelContext())
    queries, _ = beauty_task.part("test")
    hist = [fitted.encode(h) for h in queries["history"].head(20).to_list()]
    np.testing.assert_allclose(again.score(hist), fitted.score(hist), rtol=1e-5, atol=1e-5)


def test_bce_loss_and_determinism(beauty_train, beauty_task):
    spec = {**SMALL, "loss": "bce", "negatives": 2, "epochs": 2}
    a, b = create("sasrec", spec, ModelContext()), create("sasrec", spec, ModelContext())
    a.fit(beauty_train)
    b.fit(beauty_train)
    queries, _ = beauty_task.part("test")
    hist = [a.encode(h) for h in queries["history"].head(20).to_list()]
    np.testing.assert_allclose(a.score(hist), b.score(hist), rtol=1e-5, atol=1e-6)
    assert a.history_log[1]["loss"] < a.history_log[0]["loss"]
