"""Shared training helpers (shelflab/models/training.py)."""

import numpy as np
import pytest

from shelflab.models import ModelContext
from shelflab.models.sequential import item_counts, next_item_pairs
from shelflab.models.training import (
    POOL_BATCHES,
    bucketed_batch_count,
    length_bucketed_batches,
    start_training,
)

pytestmark = pytest.mark.unit


def test_length_buckets_cover_every_example_once():
    lengths = np.random.default_rng(1).integers(2, 51, 1000)
    batches = length_bucketed_batches(lengths, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    # within a pool a batch holds neighbours in length, so it is far narrower than a random one
    spread = np.mean([np.ptp(lengths[b]) for b in batches if len(b) == 16])
    assert spread < 10 < np.ptp(lengths[:16])
    assert POOL_BATCHES == 16  # pools of 256 examples: 256, 256, 256, 232 -> 16 + 16 + 16 + 15
    assert len(batches) == 63


@pytest.mark.parametrize(("n", "size"), [(0, 16), (1, 16), (255, 16), (256, 16), (1000, 16),
                                         (4097, 32), (10, 3)])  # fmt: skip
def test_batch_count_matches_the_batches(n, size):
    batches = length_bucketed_batches(np.arange(n) % 7, size, np.random.default_rng(0))
    assert bucketed_batch_count(n, size) == len(batches)


def test_same_seed_same_batches():
    lengths = np.random.default_rng(3).integers(1, 30, 300)
    a = length_bucketed_batches(lengths, 8, np.random.default_rng(5))
    b = length_bucketed_batches(lengths, 8, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_item_counts_by_hand():
    assert item_counts([[0, 2, 2], [2], []], 4).tolist() == [1, 0, 3, 0]
    assert item_counts([], 3).tolist() == [0, 0, 0]


def test_next_item_pairs_by_hand():
    history, target = next_item_pairs([[4, 7, 9], [2], [5, 6]], maxlen=2)
    # (history rows: index + 1, left-padded to 2) -> next item's index; [2] gives no pair
    assert history.tolist() == [[0, 5], [5, 8], [0, 6]]
    assert target.tolist() == [7, 9, 6]


def test_start_training_seeds_sets_threads_and_picks_the_device():
    import torch

    before = torch.get_num_threads()
    try:
        device = start_training({"seed": 7, "threads": 1, "device": "cpu"}, ModelContext())
        first = torch.rand(3)
        assert device == "cpu" and torch.get_num_threads() == 1
        start_training({"seed": 7, "device": "auto"}, ModelContext(device="cpu"))
        assert torch.equal(torch.rand(3), first)  # the same seed, the same draws
        assert torch.get_num_threads() == 1  # no `threads` param: left as it is
    finally:
        torch.set_num_threads(before)
