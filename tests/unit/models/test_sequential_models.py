"""popularity and itemknn: hand-worked scores, the full-ranking run against a brute-force rank of
the target, save/load, and the real Beauty excerpt."""

import math

import numpy as np
import polars as pl
import pytest

from shelflab.evaluation.harness import evaluate
from shelflab.models import ModelContext, TrainData, create
from shelflab.protocols.leave_one_out import leave_one_out


def task_of(users: dict[str, str], catalog: str):
    seqs = pl.DataFrame(
        {"user_id": list(users), "items": [s.split() for s in users.values()]},
        schema={"user_id": pl.String, "items": pl.List(pl.String)},
    )
    task = leave_one_out(seqs)
    items = pl.DataFrame({"item_id": catalog.split(), "text": [""] * len(catalog.split())})
    tq, tr = task.part("train")
    vq, vr = task.part("valid")
    return task, TrainData(items, tq, tr, vq, vr)


# train sequences (all but the last two items): u1 a b c, u2 a b, u3 b d, u4 a c
USERS = {"u1": "a b c x y", "u2": "a b x y", "u3": "b d y x", "u4": "a c y x"}
CATALOG = "a b c d x y"


def test_popularity_by_hand():
    task, train = task_of(USERS, CATALOG)
    model = create("popularity", {}, ModelContext())
    model.fit(train)
    assert dict(zip(model.item_ids, model.counts.tolist(), strict=True)) == {
        "a": 3, "b": 3, "c": 2, "d": 1, "x": 0, "y": 0,
    }  # fmt: skip
    queries, _ = task.part("test")
    run = model.retrieve(queries.filter(query_id="u3@test"), 3)
    # history b d y masked; a and b tie at 3 -> a, then c (2), then x (0)
    assert run["item_id"].to_list() == ["a", "c", "x"]
    assert run["rank"].to_list() == [1, 2, 3]
    unmasked = create("popularity", {"exclude_history": False}, ModelContext())
    unmasked.fit(train)
    run = unmasked.retrieve(queries.filter(query_id="u3@test"), 2)
    assert run["item_id"].to_list() == ["b", "a"]  # tie 3-3: item_id descending, as the harness


def test_itemknn_cosine_by_hand():
    _, train = task_of(USERS, CATALOG)
    model = create("itemknn", {"shrink": 0.0}, ModelContext())
    model.fit(train)
    sim = model.sim.toarray()
    ix = model.index_of
    # users of a: u1 u2 u4; of b: u1 u2 u3; of c: u1 u4; of d: u3
    assert sim[ix["a"], ix["b"]] == pytest.approx(2 / math.sqrt(3 * 3))
    assert sim[ix["a"], ix["c"]] == pytest.approx(2 / math.sqrt(3 * 2))
    assert sim[ix["b"], ix["d"]] == pytest.approx(1 / math.sqrt(3 * 1))
    assert sim[ix["a"], ix["a"]] == 0 and sim[ix["c"], ix["d"]] == 0
    # score(history [d, b]) = sim(d, .) + sim(b, .)
    scores = model.score([[ix["d"], ix["b"]]])[0]
    assert scores[ix["a"]] == pytest.approx(2 / 3)
    assert scores[ix["c"]] == pytest.approx(1 / math.sqrt(6))


def test_itemknn_transition_and_decay_by_hand():
    _, train = task_of(USERS, CATALOG)
    spec = {"similarity": "transition", "window": 2, "shrink": 0.0, "decay": 0.5}
    model = create("itemknn", spec, ModelContext())
    model.fit(train)
    sim = model.sim.toarray()
    ix = model.index_of
    # a->b: u1 (d=1), u2 (d=1); a->c: u1 (d=2, weight 1/2), u4 (d=1)
    assert sim[ix["a"], ix["b"]] == pytest.approx(2 / math.sqrt(3 * 3))
    assert sim[ix["a"], ix["c"]] == pytest.approx(1.5 / math.sqrt(3 * 2))
    assert sim[ix["b"], ix["a"]] == 0  # directed
    # history [a, b]: b is the last item (weight 1), a one step back (0.5)
    scores = model.score([[ix["a"], ix["b"]]])[0]
    b_to_c = 1 / math.sqrt(3 * 2)
    assert scores[ix["c"]] == pytest.approx(0.5 * 1.5 / math.sqrt(6) + b_to_c)


def test_neighbors_cap():
    _, train = task_of(USERS, CATALOG)
    model = create("itemknn", {"neighbors": 1}, ModelContext())
    model.fit(train)
    assert (np.diff(model.sim.indptr) <= 1).all()


def brute_force_ranks(model, queries, qrels) -> dict[str, int]:
    """Rank of each query's target in the full ranking: 1 + items scored higher, + items tied
    with a larger item_id (the harness's tie rule); history items excluded."""
    target = dict(qrels.select("query_id", "item_id").iter_rows())
    out = {}
    for qid, history in queries.select("query_id", "history").iter_rows():
        hist = model.encode(history)
        s = np.asarray(model.score([hist])[0], dtype=float).copy()
        s[hist] = -np.inf
        t = model.index_of[target[qid]]
        ids = np.asarray(model.item_ids, dtype=object)
        higher = (s > s[t]).sum() + ((s == s[t]) & (ids > ids[t])).sum()
        out[qid] = int(higher) + 1
    return out


@pytest.mark.parametrize(
    "name,spec",
    [("popularity", {}), ("itemknn", {}), ("itemknn", {"similarity": "transition", "decay": 0.7})],
)
def test_full_ranking_metrics_equal_the_target_rank(beauty_train, beauty_task, name, spec):
    """On the real excerpt: hit@10 / ndcg@10 / mrr@20 from the run through the harness equal
    those computed from the target's brute-force rank over the whole catalog."""
    model = create(name, {**spec, "batch_size": 97}, ModelContext())
    model.fit(beauty_train)
    queries, qrels = beauty_task.part("test")
    queries, qrels = queries.head(300), qrels.join(queries.head(300), on="query_id", how="semi")
    run = model.retrieve(queries, 20)
    per_query = evaluate(qrels, run, ["hit@10", "ndcg@10", "mrr"], 1.0).per_query
    ranks = brute_force_ranks(model, queries, qrels)
    got = {r["query_id"]: r for r in per_query.iter_rows(named=True)}
    for qid, rank in ranks.items():
        assert got[qid]["hit@10"] == float(rank <= 10), qid
        assert got[qid]["ndcg@10"] == pytest.approx(1 / math.log2(rank + 1) if rank <= 10 else 0)
        assert got[qid]["mrr"] == pytest.approx(1 / rank if rank <= 20 else 0)
    if name != "popularity":
        assert sum(r <= 10 for r in ranks.values()) > 0  # it does find targets


def test_itemknn_beats_popularity_on_the_excerpt(beauty_train, beauty_task):
    queries, qrels = beauty_task.part("valid")
    ndcg = {}
    for name in ("popularity", "itemknn"):
        model = create(name, {}, ModelContext())
        model.fit(beauty_train)
        run = model.retrieve(queries, 10)
        ndcg[name] = evaluate(qrels, run, ["ndcg@10"], 1.0).per_query["ndcg@10"].mean()
    assert ndcg["itemknn"] > 2 * ndcg["popularity"] > 0


@pytest.mark.parametrize("name", ["popularity", "itemknn"])
def test_save_load_index_round_trip(tmp_path, beauty_train, beauty_task, name, save_index_open):
    model = create(name, {}, ModelContext())
    model.fit(beauty_train)
    opened = save_index_open(model, beauty_train.items, tmp_path, ModelContext())
    queries, _ = beauty_task.part("test")
    assert opened.retrieve(queries.head(50), 20).equals(model.retrieve(queries.head(50), 20))


def test_catalog_must_match(tmp_path, beauty_train):
    from shelflab.errors import InputError

    model = create("popularity", {}, ModelContext())
    model.fit(beauty_train)
    with pytest.raises(InputError, match="10 items differs from the 7812"):
        model.build_index(beauty_train.items.head(10), tmp_path)
