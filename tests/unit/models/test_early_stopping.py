"""The shared keep-best / patience helper of the iterative trainers: gains, patience counting,
the evaluation it stops at, restoring the best snapshot (generic and torch), and the one
`patience` param every trainer declares."""

from __future__ import annotations

import math

import pytest
import torch

from shelflab.models.early_stopping import EarlyStopping, state_copy


class Box:
    """A stand-in for a model: its whole state is `value`."""

    def __init__(self) -> None:
        self.value = 0

    def stopper(self, patience: int) -> EarlyStopping[int]:
        return EarlyStopping(patience, lambda: self.value, self.set)

    def set(self, value: int) -> None:
        self.value = value


def run(stopper: EarlyStopping, box: Box, scores: list[float]) -> int:
    """Feed `scores` (the state after evaluation i is i + 1), as a trainer does; the number of
    evaluations made before the loop stopped."""
    for i, score in enumerate(scores, start=1):
        box.value = i
        if stopper.update(i, score):
            return i
    return len(scores)


def test_keeps_and_restores_the_best_state():
    box = Box()
    stopper = box.stopper(patience=0)
    run(stopper, box, [0.1, 0.5, 0.3, 0.2])
    assert box.value == 4  # training went on past the best evaluation...
    assert stopper.restore() is True
    assert box.value == 2  # ...and restore puts the best one back
    assert (stopper.best, stopper.best_step, stopper.bad) == (0.5, 2, 2)


def test_patience_counts_consecutive_evaluations_without_gain():
    box = Box()
    stopper = box.stopper(patience=2)
    # a gain at evaluation 3 resets the count; 4 and 5 bring none -> stop after 5
    assert run(stopper, box, [0.1, 0.05, 0.2, 0.2, 0.15, 0.9]) == 5
    assert stopper.should_stop and stopper.evaluations == 5
    assert (stopper.best, stopper.best_step) == (0.2, 3)  # a tie is not a gain
    stopper.restore()
    assert box.value == 3


@pytest.mark.parametrize(("patience", "stops_at"), [(1, 2), (3, 4), (0, 6)])
def test_stops_at_the_right_evaluation(patience, stops_at):
    box = Box()
    assert run(box.stopper(patience), box, [0.5, 0.4, 0.3, 0.2, 0.1, 0.0]) == stops_at


def test_patience_zero_never_stops():
    box = Box()
    stopper = box.stopper(patience=0)
    assert not any(stopper.update(i, 0.0) for i in range(100))
    assert stopper.bad == 99 and stopper.best_step == 0


def test_nan_is_never_a_gain():
    box = Box()
    stopper = box.stopper(patience=5)
    run(stopper, box, [math.nan, 0.1, math.nan])
    assert (stopper.best, stopper.best_step, stopper.bad) == (0.1, 2, 1)


def test_nothing_to_restore_without_evaluations():
    box = Box()
    box.value = 7
    stopper = box.stopper(patience=1)
    assert stopper.best is None and stopper.best_step is None and not stopper.improved
    assert stopper.restore() is False
    assert box.value == 7  # no valid split: the last state stays


def test_improved_follows_the_last_evaluation():
    stopper = Box().stopper(patience=3)
    stopper.update(1, 0.2)
    assert stopper.improved
    stopper.update(2, 0.1)
    assert not stopper.improved


@pytest.mark.parametrize("patience", [-1, 1.5, True, "2"])
def test_bad_patience(patience):
    with pytest.raises(ValueError, match="patience"):
        Box().stopper(patience)


def test_torch_module_best_weights_restored():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    stopper = EarlyStopping.for_module(net, patience=2)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    weights = []
    for epoch, score in enumerate([0.3, 0.6, 0.4, 0.5], start=1):
        # in-place updates: a snapshot sharing storage with the parameters would follow them
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
        weights.append({k: v.clone() for k, v in net.state_dict().items()})
        if stopper.update(epoch, score):
            break
    assert stopper.best_step == 2 and len(weights) == 4  # stopped after 2 evaluations w/o gain
    assert not torch.equal(net.weight, weights[1]["weight"])  # skipping restore would fail
    assert stopper.restore()
    for key, value in net.state_dict().items():
        assert torch.equal(value, weights[1][key])


def test_state_copy_is_independent_of_the_module():
    net = torch.nn.Linear(2, 2)
    snap = state_copy(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not torch.equal(snap["weight"], net.weight)


def test_every_trainer_names_its_patience_patience():
    from shelflab.models.biencoder_ft import BiEncoderFT
    from shelflab.models.cross_encoder import CrossEncoderRetriever
    from shelflab.models.sasrec import SASRecRetriever
    from shelflab.models.two_tower import TwoTowerRetriever

    defaults = {}
    for cls in (SASRecRetriever, TwoTowerRetriever, BiEncoderFT, CrossEncoderRetriever):
        assert "early_stopping" not in cls.PARAMS
        param = cls.PARAMS["patience"]
        assert (param.kind, param.min) == ("int", 0)  # one rule: 0 = never stop
        defaults[cls.family] = param.default
    # each family keeps its own default
    assert defaults == {"sasrec": 5, "two_tower": 3, "biencoder_ft": 2, "cross_encoder": 1}
