"""Issue 18's guard, second half, shared by tests/e2e/test_relabel_seeds*.py: relabelling the
item ids with another seed must not move a shipped next-item model. The check is split over
files so that pytest-xdist (--dist loadfile) runs its slow parts on both workers."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

# each shipped next-item model (params.yaml) is checked by exactly one file
GROUPS = {
    "base": {"popularity", "itemknn", "sasrec", "sasrec_semantic", "two_tower",
             "two_tower_itemknn"},
    "mmoe": {"mmoe"},
    "mmoe_single": {"mmoe_single"},
    "tiger": {"tiger"},
}  # fmt: skip


@pytest.fixture(scope="session")
def relabel_check(repo_root, tmp_path_factory):
    """relabel_check(models): the models whose test NDCG@10 moved by a CI half-width or more
    between relabelling seeds 0 and 1 ({} when none), and the seed-0 scores."""

    def check(models: set[str]) -> tuple[dict, dict]:
        cache = tmp_path_factory.mktemp("cache")
        first = _test_ndcg(repo_root, 0, cache, models)
        second = _test_ndcg(repo_root, 1, cache, models)
        moved = {
            name: (round(first[name][0], 4), round(second[name][0], 4), round(first[name][1], 4))
            for name in first
            if abs(first[name][0] - second[name][0]) >= first[name][1]
        }
        return moved, first

    return check


def shipped_models(repo_root: Path) -> set[str]:
    """The next-item models of params.yaml that can run here (llm_rerank needs an endpoint)."""
    from shelflab.config import load_params, model_spec
    from shelflab.models import FAMILIES

    params = load_params(repo_root / "tracks/nextitem/params.yaml")
    return {
        name
        for name in params["models"]
        if not FAMILIES[model_spec(params, name)["family"]].unavailable_reason(
            model_spec(params, name)
        )
    }


def _test_ndcg(
    repo_root: Path, seed: int, cache: Path, models: set[str]
) -> dict[str, tuple[float, float]]:
    """model -> (test NDCG@10, half-width of its 95 % CI) with ids relabelled by `seed`."""
    from shelflab.config import load_params, model_spec
    from shelflab.data_io.sequence_dataset import load_sequence_dataset
    from shelflab.evaluation.harness import evaluate
    from shelflab.evaluation.significance import summarize
    from shelflab.models import ModelContext, TrainData, create, open_model
    from shelflab.protocols.leave_one_out import leave_one_out
    from shelflab.quarantine import Quarantine

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
    for name in sorted(models):
        with tempfile.TemporaryDirectory() as tmp:
            model_dir, index_dir = Path(tmp) / "model", Path(tmp) / "index"
            model_dir.mkdir()
            index_dir.mkdir()
            model = create(name, model_spec(params, name), ctx)
            model.fit(train)
            model.save(model_dir)
            model.build_index(ds.items, index_dir)
            run = open_model(model_dir, index_dir, ctx).retrieve(test_q, 100)
        per_query = evaluate(test_r, run, ["ndcg@10"]).per_query
        row = summarize(per_query, ["ndcg@10"], seed=0).row(0, named=True)
        out[name] = (row["mean"], (row["ci_high"] - row["ci_low"]) / 2)
    return out
