"""The relabelling-seed guard (tests/e2e/test_relabel_seeds.py) for `tiger`, in a file of its
own so that pytest-xdist runs it beside the others."""

from __future__ import annotations

import pytest
from plugins.relabel import GROUPS

pytestmark = [pytest.mark.slow]


def test_tiger_does_not_move_with_the_relabelling_seed(relabel_check):
    moved, first = relabel_check(GROUPS["tiger"])
    assert set(first) == GROUPS["tiger"] and all(value > 0 for value, _ in first.values())
    assert not moved, f"NDCG@10 moved by a CI half-width or more (seed 0, seed 1, half): {moved}"
