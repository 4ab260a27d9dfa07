"""Issue 18's guard, second half: relabelling the item ids with another seed must not move any
shipped next-item model. Every model of tracks/nextitem/params.yaml (its shipped sample
budgets) is trained on the real Beauty excerpt relabelled with seed 0 and with seed 1, and
its test NDCG@10 must move by less than the half-width of its 95 % bootstrap CI. A model that
read id order (or broke ties by it) would move with the permutation."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from shelflab.config import load_params, model_spec
from shelflab.data_io.sequence_dataset import load_sequence_dataset
from shelflab.evaluation.harness import evaluate
from shelflab.evaluation.significance import summarize
from shelflab.models import ModelContext, TrainData, create, open_model
from shelflab.protocols.leave_one_out import leave_one_out
from shelflab.quarantine import Quarantine

pytestmark = [pytest.mark.slow]


def _test_ndcg(repo_root: Path, seed: int, cache: Path) -> dict[str, tuple[float, float]]:
    """model -> (test NDCG@10, half-width of its 95 % CI) with ids relabelled by `seed`."""
    params = load_params(repo_root / "tracks/nextitem/params.yaml")
    data = params["data"]
    ds = load_sequence_dataset(
        data["format"],
        repo_root / "tracks/nextitem" / data["dir"],
        sequences=data["sequences"],
        attributes=data["attributes"],
        datamaps=data["datamaps"],
        quarantine=Quarantine(),
        relabel_seed=seed,
    )
    task = leave_one_out(ds.sequences, min_length=params["split"]["min_length"])
    (train_q, train_r), (valid_q, valid_r) = task.part("train"), task.part("valid")
    test_q, test_r = task.part("test")
    train = TrainData(ds.items, train_q, train_r, valid_q, valid_r)
    ctx = ModelContext(device="cpu", cache_dir=cache)
    out = {}
    for name in params["models"]:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir, index_dir = Path(tmp) / "model", Path(tmp) / "index"
            model_dir.mkdir()
            index_dir.mkdir()
            model = create(name, model_spec(params, name), ctx)
            if type(model).unavailable_reason(model.params):  # llm_rerank without an endpoint
                continue
            model.fit(train)
            model.save(model_dir)
            model.build_index(ds.items, index_dir)
            run = open_model(model_dir, index_dir, ctx).retrieve(test_q, 100)
        per_query = evaluate(test_r, run, ["ndcg@10"]).per_query
        row = summarize(per_query, ["ndcg@10"], seed=0).row(0, named=True)
        out[name] = (row["mean"], (row["ci_high"] - row["ci_low"]) / 2)
    return out


def test_no_shipped_model_moves_with_the_relabelling_seed(repo_root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    first, second = _test_ndcg(repo_root, 0, cache), _test_ndcg(repo_root, 1, cache)
    assert set(first) == {
        "popularity", "itemknn", "sasrec", "sasrec_semantic", "two_tower", "two_tower_itemknn",
        "mmoe", "mmoe_single",
    }  # fmt: skip
    moved = {
        name: (round(first[name][0], 4), round(second[name][0], 4), round(first[name][1], 4))
        for name in first
        if abs(first[name][0] - second[name][0]) >= first[name][1]
    }
    assert not moved, f"NDCG@10 moved by a CI half-width or more (seed 0, seed 1, half): {moved}"
    assert all(value > 0 for value, _ in first.values())
