"""shelflab.data_io.relabel: item ids replaced by a seeded permutation at ingest, on the real
shipped S3-Rec Beauty excerpt, and the leak it closes: a rule that only looks at ids."""

from __future__ import annotations

import polars as pl
import pytest

from shelflab.data_io.relabel import relabel_items
from shelflab.data_io.sequence_dataset import load_sequence_dataset
from shelflab.data_io.sequences import SequenceDataset
from shelflab.errors import InputError
from shelflab.evaluation.harness import evaluate
from shelflab.protocols.leave_one_out import leave_one_out
from shelflab.quarantine import Quarantine

K = 100


def beauty(repo_root, seed: int | None) -> SequenceDataset:
    return load_sequence_dataset(
        "s3rec",
        repo_root / "data/sample/sequences",
        sequences="Beauty.sample.txt.gz",
        attributes="Beauty.sample_item2attributes.json.gz",
        datamaps="Beauty.sample_datamaps.json.gz",
        quarantine=Quarantine(),
        relabel_seed=seed,
    )


def test_relabelling_is_a_seeded_bijection_that_maps_back(repo_root):
    source = beauty(repo_root, None)
    a, again, other = (beauty(repo_root, s) for s in (0, 0, 1))
    assert source.id_map is None and a.id_map is not None
    ids = a.items["item_id"]
    assert ids.len() == source.items.height == ids.n_unique()
    assert ids.str.starts_with("i").all() and ids.is_sorted()  # catalog in new-id order
    assert set(a.id_map["source_item_id"]) == set(source.items["item_id"])
    assert a.id_map.equals(again.id_map) and a.sequences.equals(again.sequences)
    assert not a.id_map.equals(other.id_map)
    back = dict(zip(a.id_map["item_id"], a.id_map["source_item_id"], strict=True))
    restored = a.sequences.with_columns(
        pl.col("items").list.eval(pl.element().replace_strict(back, return_dtype=pl.String))
    )
    assert restored.equals(source.sequences)
    text = dict(zip(source.items["item_id"], source.items["text"], strict=True))
    assert [text[back[i]] for i in a.items["item_id"]] == a.items["text"].to_list()
    # the new numbering is unrelated to the source's: no more than chance agreement in order
    order = a.id_map.sort(pl.col("source_item_id").cast(pl.Int64)).with_row_index("source_rank")
    assert abs(order.select(pl.corr("source_rank", pl.col("item_id").rank())).item()) < 0.05


def test_a_sequence_item_outside_the_catalog_is_refused():
    ds = SequenceDataset(
        name="tiny",
        sequences=pl.DataFrame({"user_id": ["u1"], "items": [["1", "2", "9"]]}),
        items=pl.DataFrame({"item_id": ["1", "2"], "text": ["", ""]}),
        stats={"path": "tiny.txt"},
    )
    with pytest.raises(InputError, match=r"tiny\.txt: 1 item id\(s\) .* not in the catalog.*'9'"):
        relabel_items(ds, 0)


def test_the_id_only_rule_falls_to_chance_after_relabelling(repo_root):
    """S3-Rec numbers items by first appearance: "rank the ids just above the history's
    highest id" beats popularity several times over on source ids, and falls below it once
    the ids are relabelled (the issue's guard, on the real excerpt)."""
    scores = {}
    for seed in (None, 0, 1):
        ds = beauty(repo_root, seed)
        task = leave_one_out(ds.sequences, min_length=3)
        queries, qrels = task.part("test")
        rule = evaluate(qrels, _id_rule(ds, queries), ["ndcg@10"]).means["ndcg@10"]
        pop = evaluate(qrels, _popularity(task, queries), ["ndcg@10"]).means["ndcg@10"]
        scores[seed] = (rule, pop)
    rule, pop = scores[None]
    assert rule > 4 * pop  # the leak is real on the shipped excerpt (0.043 vs 0.0056)
    for seed in (0, 1):
        rule, pop = scores[seed]
        assert rule < pop, (seed, rule, pop)  # ~0.0005: chance level, under popularity


def _id_rule(ds: SequenceDataset, queries: pl.DataFrame) -> pl.DataFrame:
    """Per query: the K catalog ids just above the highest id of its history (wrapping round),
    history items left out."""
    by_number = {int(i.lstrip("i")): i for i in ds.items["item_id"]}
    top = max(by_number)
    rows = []
    for qid, history in zip(queries["query_id"], queries["history"], strict=True):
        high, seen = max(int(i.lstrip("i")) for i in history), set(history)
        picked = []
        for step in range(1, top + 1):
            item = by_number.get((high + step - 1) % top + 1)
            if item is not None and item not in seen:
                picked.append(item)
            if len(picked) == K:
                break
        rows += [(qid, item, float(K - r)) for r, item in enumerate(picked)]
    return pl.DataFrame(rows, schema=["query_id", "item_id", "score"], orient="row")


def _popularity(task, queries: pl.DataFrame) -> pl.DataFrame:
    """Per query: the K items most frequent in the train sequences, history items left out."""
    train_q, train_rel = task.part("train")
    seen_items = pl.concat(
        [train_q.select(pl.col("history").explode().alias("item_id")), train_rel.select("item_id")]
    ).drop_nulls()
    ranked = seen_items.group_by("item_id").len().sort(["len", "item_id"], descending=True)
    order = list(zip(ranked["item_id"], ranked["len"], strict=True))
    rows = []
    for qid, history in zip(queries["query_id"], queries["history"], strict=True):
        seen = set(history)
        kept = [(i, c) for i, c in order if i not in seen][:K]
        rows += [(qid, i, float(c)) for i, c in kept]
    return pl.DataFrame(rows, schema=["query_id", "item_id", "score"], orient="row")


def test_translate_ids_both_ways_and_unknown_ids(tmp_path):
    from shelflab.data_io.relabel import read_id_map, translate_ids

    id_map = pl.DataFrame({"item_id": ["i1", "i2"], "source_item_id": ["7", "9"]})
    queries = pl.DataFrame({"query_id": ["a", "b"], "history": [["7", "404", "9"], []]})
    inside = translate_ids(queries, "history", id_map, to="internal")
    assert inside["history"].to_list() == [["i1", "i2"], []]  # 404: not in the catalog
    run = pl.DataFrame({"query_id": ["a", "a"], "item_id": ["i2", "i1"]})
    assert translate_ids(run, "item_id", id_map, to="source")["item_id"].to_list() == ["9", "7"]
    back = translate_ids(inside, "history", id_map, to="source")
    assert back["history"].to_list() == [["7", "9"], []]
    with pytest.raises(ValueError, match="to must be"):
        translate_ids(run, "item_id", id_map, to="raw")
    assert read_id_map(tmp_path / "none.parquet") is None
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"item_id": ["i1"]}).write_parquet(bad)
    with pytest.raises(InputError, match=r"bad\.parquet: .*expected columns"):
        read_id_map(bad)
