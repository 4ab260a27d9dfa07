"""The leave-one-out protocol, by hand."""

import numpy as np
import polars as pl
import pytest

from shelflab.models.sequential import mask_history
from shelflab.protocols.leave_one_out import leave_one_out
from shelflab.quarantine import Quarantine


def seqs(**users):
    return pl.DataFrame(
        {"user_id": list(users), "items": [s.split() for s in users.values()]},
        schema={"user_id": pl.String, "items": pl.List(pl.String)},
    )


def test_three_queries_per_user():
    q = Quarantine()
    task = leave_one_out(seqs(u1="a b c d", u2="x y z", u3="p q"), quarantine=q, source="f.txt")
    rows = {
        (qid, tuple(h)): item
        for qid, h, item in task.queries.join(task.qrels, on="query_id")
        .select("query_id", "history", "item_id")
        .iter_rows()
    }
    assert rows == {
        ("u1@test", ("a", "b", "c")): "d",
        ("u1@valid", ("a", "b")): "c",
        ("u1@train", ("a",)): "b",
        ("u2@test", ("x", "y")): "z",
        ("u2@valid", ("x",)): "y",
        ("u2@train", ()): "x",  # the train sequence of u2 is just x
    }
    assert dict(task.splits.iter_rows()) == {
        f"{u}@{s}": s for u in ("u1", "u2") for s in ("train", "valid", "test")
    }
    assert set(task.qrels["grade"]) == {1.0}
    # the short user is kept in the quarantine, with its items
    assert q.counts() == {"fewer than 3 items": 1}
    assert q.table()["record"][0] == '{"user_id":"u3","items":"p q"}'
    queries, qrels = task.part("valid")
    assert queries["query_id"].to_list() == ["u1@valid", "u2@valid"]
    assert qrels["item_id"].to_list() == ["c", "y"]


def test_min_length():
    with pytest.raises(ValueError, match=">= 3"):
        leave_one_out(seqs(u="a b c"), min_length=2)
    task = leave_one_out(seqs(u1="a b c d", u2="x y z"), min_length=4)
    assert set(task.queries["user_id"]) == {"u1"}


def test_mask_history():
    scores = np.arange(12, dtype=float).reshape(2, 6)
    mask_history(scores, [[0, 5, 5], []])
    assert np.isneginf(scores[0, [0, 5]]).all() and np.isfinite(scores[0, 1:5]).all()
    assert np.isfinite(scores[1]).all()


def test_rated_sequences_give_the_target_rating_on_the_qrels():
    # review-file sequences carry each item's rating: a query's qrel gets its target's rating
    rated = pl.DataFrame(
        {"user_id": ["u1", "u2"], "items": [["a", "b", "c", "d"], ["x", "y"]],
         "ratings": [[5.0, 3.0, 1.0, 4.0], [2.0, 2.0]]},
        schema={"user_id": pl.String, "items": pl.List(pl.String), "ratings": pl.List(pl.Float64)},
    )  # fmt: skip
    q = Quarantine()
    task = leave_one_out(rated, quarantine=q)
    got = {r["query_id"]: (r["item_id"], r["rating"]) for r in task.qrels.iter_rows(named=True)}
    assert got == {"u1@test": ("d", 4.0), "u1@valid": ("c", 1.0), "u1@train": ("b", 3.0)}
    assert task.qrels["grade"].to_list() == [1.0] * 3  # the harness's grade stays binary
    assert q.counts() == {"fewer than 3 items": 1}  # u2, with its ratings in the record
    assert '"ratings":[2.0,2.0]' in q.table()["record"][0]
    assert "rating" not in leave_one_out(seqs(u1="a b c")).qrels.columns
