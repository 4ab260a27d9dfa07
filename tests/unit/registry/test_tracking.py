"""MLflow conventions on a real sqlite tracking store, and the leaderboard read back from it."""

import argparse

import mlflow
import numpy as np
import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from shelflab.cli.leaderboard import show_leaderboard
from shelflab.registry.runs import latest_per_query
from shelflab.registry.tracking import (
    data_hash,
    flatten,
    git_commit,
    log_evaluation,
    metric_key,
)


def test_metric_key_has_no_at_sign():
    assert metric_key("test", "ndcg@10") == "test_ndcg_at_10"
    assert metric_key("valid", "mrr", "ci_low") == "valid_mrr_ci_low"


def test_flatten_nested_params():
    assert flatten({"a": 1, "c": {"d": [1, 2], "e": {"f": "x"}}}) == {
        "a": "1",
        "c.d": "[1, 2]",
        "c.e.f": "x",
    }


def test_data_hash_is_order_independent_and_content_sensitive(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("1")
    b.write_text("2")
    first = data_hash([a, b])
    assert first == data_hash([b, a])
    b.write_text("3")
    assert data_hash([a, b]) != first


def test_git_commit_outside_repo(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def per_query(values, split="test"):
    return pl.DataFrame(
        {
            "query_id": [f"q{i}" for i in range(len(values))],
            "ndcg@10": values,
            "mrr": values,
            "split": split,
        }
    )


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 200)
    tables = {"bm25": base, "hybrid": np.clip(base + 0.1, 0, 1)}
    for name, values in tables.items():
        path = tmp_path / f"{name}.parquet"
        pl.concat([per_query(values), per_query(values / 2, "valid")]).write_parquet(path)
        log_evaluation(
            tracking_uri=uri,
            experiment="search-test",
            model_name=name,
            params={"model": {"family": name, "k1": 1.2}},
            metrics={"test_ndcg_at_10": float(values.mean())},
            tags={"git_commit": "abc", "data_hash": "d0", "track": "search", "model_family": name},
            artifacts=[path],
            curve_steps={"test_ndcg_at_k": {1: 0.1, 10: 0.3}},
        )
    return uri, tables


def test_log_evaluation_records_conventions(tracking):
    uri, tables = tracking
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("search-test")
    runs = client.search_runs([exp.experiment_id])
    assert {r.data.tags["shelflab.model"] for r in runs} == {"bm25", "hybrid"}
    run = next(r for r in runs if r.data.tags["shelflab.model"] == "bm25")
    assert run.data.params["model.k1"] == "1.2"
    assert run.data.tags["model_family"] == "bm25" and run.data.tags["data_hash"] == "d0"
    assert run.data.metrics["test_ndcg_at_10"] == pytest.approx(tables["bm25"].mean())
    history = client.get_metric_history(run.info.run_id, "test_ndcg_at_k")
    assert [(m.step, m.value) for m in history] == [(1, 0.1), (10, 0.3)]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"bm25.parquet"}


def test_latest_per_query_takes_newest_run_per_model(tracking, tmp_path):
    uri, tables = tracking
    newer = tmp_path / "bm25.parquet"
    per_query(np.zeros(200)).write_parquet(newer)
    log_evaluation(
        tracking_uri=uri,
        experiment="search-test",
        model_name="bm25",
        params={},
        metrics={},
        tags={},
        artifacts=[newer],
    )
    got = latest_per_query(uri, "search-test", "test")
    assert got["bm25"]["ndcg@10"].sum() == 0
    assert got["hybrid"]["ndcg@10"].to_numpy() == pytest.approx(np.clip(tables["bm25"] + 0.1, 0, 1))


def test_leaderboard_cli_from_mlflow(tracking, monkeypatch, tmp_path):
    uri, _ = tracking
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(
        experiment="search-test",
        metric="ndcg@10",
        metrics=["ndcg@10"],
        split="test",
        baseline="bm25",
        format="json",
    )
    out = show_leaderboard(args)
    assert out.index('"hybrid"') < out.index('"bm25"')  # sorted best first


def test_unknown_experiment_is_clear(tracking):
    from shelflab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"no MLflow experiment 'nope'.*search-test"):
        latest_per_query(tracking[0], "nope", "test")
    mlflow.set_tracking_uri("")


def test_new_experiment_keeps_artifacts_beside_the_sqlite_store(tmp_path, monkeypatch):
    """A track runs from its own folder (tracks/<name>) but logs to the repo's store: its
    artifacts must land in <repo>/mlruns, not in <repo>/tracks/<name>/mlruns."""
    from shelflab.registry.tracking import use_experiment

    track = tmp_path / "tracks" / "t"
    track.mkdir(parents=True)
    monkeypatch.chdir(track)
    mlflow.set_tracking_uri("sqlite:///../../mlflow.db")
    try:
        use_experiment("nextitem-x")
        use_experiment("nextitem-x")  # existing: reused
        with mlflow.start_run():
            mlflow.log_text("hello", "note.txt")
        exp = mlflow.get_experiment_by_name("nextitem-x")
        assert exp.artifact_location == (tmp_path / "mlruns").as_uri()
        assert list((tmp_path / "mlruns").rglob("note.txt"))
        assert not (track / "mlruns").exists()
    finally:
        mlflow.set_tracking_uri(None)
