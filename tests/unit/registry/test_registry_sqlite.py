"""Registered pipelines, promotion, alias history and rollback on a real MLflow sqlite store."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import polars as pl
import pytest

from shelflab.errors import ConfigError, InputError
from shelflab.registry.aliases import CHALLENGER, CHAMPION, current, history, rollback
from shelflab.registry.promote import promote


def client(uri):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def test_registered_version_is_a_loadable_pyfunc(
    store, name, built, publisher, sample_all, tmp_path
):
    version = publisher(name, built["bm25"])
    c = client(store)
    mv = c.get_model_version(name, version)
    assert mv.tags["shelflab.model"] == "bm25" and mv.tags["dataset"] == "sample-test"
    assert len(mv.tags["params_hash"]) == 16 and float(mv.tags["test_ndcg_at_10"]) > 0.3
    # a fresh process with only ShelfLab installed loads it by version and retrieves
    queries = sample_all["queries"].head(5).select("query_id", pl.col("raw_text").alias("text"))
    queries.write_parquet(tmp_path / "q.parquet")
    code = (
        "import sys, mlflow, polars as pl\n"
        f"mlflow.set_tracking_uri({store!r})\n"
        f"m = mlflow.pyfunc.load_model('models:/{name}/{version}')\n"
        "q = pl.read_parquet(sys.argv[1]).to_pandas()\n"
        "out = m.predict(q, params={'k': 7})\n"
        "pl.from_pandas(out).write_parquet(sys.argv[2])\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "q.parquet"), str(tmp_path / "out.parquet")],
        check=True,
        env={**os.environ, "SHELFLAB_CACHE_DIR": str(tmp_path / "cache")},
        cwd=tmp_path,
    )
    got = pl.read_parquet(tmp_path / "out.parquet")
    assert got.columns == ["query_id", "item_id", "score", "rank"]
    assert got.group_by("query_id").len()["len"].max() == 7
    # the pipeline's own top 7 for those queries (query text normalised the same way): same
    # scores rank by rank; the same items except among ties at the cut-off
    own = built["bm25"].report.runs["test"].filter(pl.col("rank") <= 7)
    want = own.join(queries.select("query_id"), on="query_id", how="semi")
    got, want = got.sort("query_id", "rank"), want.sort("query_id", "rank")
    assert got["query_id"].to_list() == want["query_id"].to_list()
    assert got["score"].to_numpy() == pytest.approx(want["score"].to_numpy(), rel=1e-6)
    cut = want.group_by("query_id").agg(pl.col("score").min().alias("cut"))
    above = [
        f.join(cut, on="query_id").filter(pl.col("score") > pl.col("cut") + 1e-9)
        for f in (got, want)
    ]
    assert above[0].select("query_id", "item_id").equals(above[1].select("query_id", "item_id"))


def test_model_card_and_signature(store, name, built, publisher, tmp_path):
    import mlflow

    version = publisher(name, built["dense"])
    mv = client(store).get_model_version(name, version)
    card = Path(
        mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path="model_card.md", dst_path=str(tmp_path)
        )
    ).read_text()
    for part in (
        "## Data",
        "ndcg@10",
        "## Test results by query length",
        "1 word",
        "## Params",
        "## Known limits",
        "MiniLM",
    ):
        assert part in card, part
    info = mlflow.models.get_model_info(f"models:/{name}/{version}")
    assert [c.name for c in info.signature.inputs.inputs] == ["query_id", "text"]
    assert info.signature.params.params[0].name == "k"


def test_version_description_is_the_model_cards_head(store, name, built, publisher):
    from shelflab.registry.pipeline_model import REGISTERED_DESCRIPTION

    c = client(store)
    c.create_registered_model(name)  # made elsewhere, without a description
    version = publisher(name, built["bm25"])
    text = c.get_model_version(name, version).description
    assert text.startswith(f"# {name}: `bm25` (bm25)\n")
    assert "- dataset: sample-test" in text
    ndcg = built["bm25"].report.summary["test"]["ndcg@10"]
    cell = f"{ndcg['mean']:.4f} [{ndcg['ci_low']:.4f}, {ndcg['ci_high']:.4f}]"
    assert f"| ndcg@10 | {cell} |" in text and "| metric | test |" in text
    assert "## Params" not in text and len(text) < 2000  # the card's head, not the card
    assert c.get_registered_model(name).description == REGISTERED_DESCRIPTION


def test_promotion_flow_history_and_rollback(store, name, built, publisher, promote_cfg):
    c = client(store)
    cfg = promote_cfg()
    v_dense = publisher(name, built["dense"])
    first = promote(store, name, v_dense, cfg, "test")
    assert first.decision is None and current(c, name, CHAMPION) == v_dense

    v_bm25 = publisher(name, built["bm25"])
    better = promote(store, name, v_bm25, cfg, "test")
    assert better.decision.promote and better.decision.p_value < 0.05
    assert current(c, name, CHAMPION) == v_bm25 and current(c, name, CHALLENGER) == v_dense

    v_dense2 = publisher(name, built["dense"])
    worse = promote(store, name, v_dense2, cfg, "test")
    assert not worse.decision.promote and worse.decision.delta < 0
    assert current(c, name, CHAMPION) == v_bm25 and current(c, name, CHALLENGER) == v_dense2

    # the decision run holds the evidence
    run = c.get_run(worse.run_id)
    assert run.data.tags["decision"] == "keep"
    assert run.data.metrics["p_value"] == pytest.approx(worse.decision.p_value)

    moves = history(c, name)
    assert [m.seq for m in moves] == list(range(1, len(moves) + 1))
    assert [(m.alias, m.from_version, m.to_version, m.action) for m in moves] == [
        (CHAMPION, None, v_dense, "initial"),
        (CHAMPION, v_dense, v_bm25, "promote"),
        (CHALLENGER, None, v_dense, "promote"),
        (CHALLENGER, v_dense, v_dense2, "refuse"),
    ]
    assert all(m.who and m.when and m.why for m in moves)

    back = rollback(c, store, name, why="bad week")
    assert (back.from_version, back.to_version, back.why) == (v_bm25, v_dense, "bad week")
    assert current(c, name, CHAMPION) == v_dense and current(c, name, CHALLENGER) == v_bm25
    with pytest.raises(ConfigError, match="no earlier champion"):
        rollback(c, store, name)
    assert current(c, name, CHAMPION) == v_dense


def test_bad_candidates_move_no_alias(store, name, built, publisher, promote_cfg):
    c = client(store)
    cfg = promote_cfg()
    v1 = publisher(name, built["bm25"])
    promote(store, name, v1, cfg, "test")
    before = len(history(c, name))
    with pytest.raises(ConfigError, match="no registered model 'nope'"):
        promote(store, "nope", v1, cfg, "test")
    with pytest.raises(ConfigError, match="has no version 99"):
        promote(store, name, "99", cfg, "test")
    with pytest.raises(ConfigError, match="already the champion"):
        promote(store, name, v1, cfg, "test")
    with pytest.raises(InputError, match="no evaluation on split 'valid'"):
        promote(store, name, publisher(name, built["dense"]), cfg, "valid")
    other = publisher(name, built["dense"], dataset="wands")
    with pytest.raises(ConfigError, match="dataset 'wands'"):
        promote(store, name, other, cfg, "test")
    # a run id registered under another name
    elsewhere = publisher(name + "-other", built["dense"])
    run_id = c.get_model_version(name + "-other", elsewhere).run_id
    with pytest.raises(ConfigError, match="has no version of"):
        promote(store, name, run_id, cfg, "test")
    # a corrupted artifact: the per-query table of the candidate's run is unreadable
    v_bad = publisher(name, built["dense"])
    run = c.get_run(c.get_model_version(name, v_bad).run_id)
    stored = Path(urlparse(run.info.artifact_uri).path) / "dense.parquet"
    assert stored.is_file()
    stored.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="cannot read its per-query metrics"):
        promote(store, name, v_bad, cfg, "test")
    assert current(c, name, CHAMPION) == v1 and current(c, name, CHALLENGER) is None
    assert len(history(c, name)) == before


def _promote_in_process(args):
    uri, name, version, cfg = args
    from shelflab.registry.promote import promote as run

    return run(uri, name, version, cfg, "test").champion_after


def test_concurrent_promotions_leave_one_champion_and_a_full_history(
    store, name, built, publisher, promote_cfg
):
    c = client(store)
    cfg = promote_cfg()
    v_dense = publisher(name, built["dense"])
    promote(store, name, v_dense, cfg, "test")
    candidates = [publisher(name, built["bm25"]), publisher(name, built["bm25"])]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_promote_in_process, [(store, name, v, cfg) for v in candidates])
    moves = history(c, name)
    assert [m.seq for m in moves] == list(range(1, len(moves) + 1))
    champion = current(c, name, CHAMPION)
    # the first one in beats dense; the second one ties it (same results) and is refused
    assert champion in candidates
    loser = next(v for v in candidates if v != champion)
    assert current(c, name, CHALLENGER) == loser
    actions = [(m.alias, m.to_version, m.action) for m in moves[1:]]
    assert (CHAMPION, champion, "promote") in actions and (CHALLENGER, loser, "refuse") in actions
    # each move starts from where the previous one of the same alias left it
    last: dict[str, str | None] = {}
    for m in moves:
        assert m.from_version == last.get(m.alias)
        last[m.alias] = m.to_version
    assert json.loads(moves[-1].as_json())["seq"] == len(moves)
