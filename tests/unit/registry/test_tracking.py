"""MLflow conventions on a real sqlite tracking store, and the leaderboard read back from it."""

import argparse
import json
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
from mlflow.exceptions import MlflowException
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


def test_a_failed_evaluation_run_is_not_the_latest(tracking, tmp_path):
    # an evaluate stage that fails midway leaves a FAILED run without its per-query table
    uri, tables = tracking
    path = tmp_path / "hybrid.parquet"
    per_query(np.zeros(200)).write_parquet(path)
    with pytest.raises(MlflowException, match="Invalid value"):
        log_evaluation(
            tracking_uri=uri,
            experiment="search-test",
            model_name="hybrid",
            params={},
            metrics={"test_bad@name": 1.0},
            tags={},
            artifacts=[path],
        )
    got = latest_per_query(uri, "search-test", "test")
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
    assert '"p_value"' in out
    # a baseline asked for by name that is not there is an error, not a missing p column
    from shelflab.errors import ConfigError

    args.baseline = "bm42"
    with pytest.raises(ConfigError, match=r"--baseline 'bm42': no such model .*bm25, hybrid"):
        show_leaderboard(args)


def test_leaderboard_cli_uses_the_tracks_resampling_settings(tracking, monkeypatch, tmp_path):
    # run in a track, the CLI prints what the leaderboard stage prints: the params' resampling
    import yaml

    from shelflab.evaluation.leaderboard import build_leaderboard

    uri, _ = tracking
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = yaml.safe_load((Path(__file__).parents[3] / "params.yaml").read_text())
    params["leaderboard"]["significance"] = {"method": "bootstrap", "n_resamples": 300, "seed": 7}
    params["evaluate"]["bootstrap"]["confidence"] = 0.8
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(experiment="search-test", metric="ndcg@10", metrics=["ndcg@10"],
                              split="test", baseline="bm25", format="json")  # fmt: skip
    got = {row["model"]: row for row in json.loads(show_leaderboard(args))}
    per_query = latest_per_query(uri, "search-test", "test")
    want = build_leaderboard(per_query, ["ndcg@10"], "bm25", method="bootstrap", n_resamples=300,
                             confidence=0.8, seed=7)  # fmt: skip
    default = build_leaderboard(per_query, ["ndcg@10"], "bm25")
    for row in want.to_dicts():
        for key in ("ndcg@10_ci_low", "ndcg@10_ci_high", "p_value"):
            assert got[row["model"]][key] == row[key]
    hybrid = default.filter(pl.col("model") == "hybrid").row(0, named=True)
    assert got["hybrid"]["ndcg@10_ci_low"] != hybrid["ndcg@10_ci_low"]  # not the defaults


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


# --- what a user of the MLflow UI sees: experiment kind, datasets, leaderboard view ---------
def test_experiments_are_model_training_new_and_old(tracking, tmp_path):
    from shelflab.registry.tracking import EXPERIMENT_KIND_TAG, use_experiment

    # new (made by log_evaluation)
    exp = MlflowClient(tracking[0]).get_experiment_by_name("search-test")
    assert exp.tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    # old: made before ShelfLab tagged its experiments, or guessed wrong by someone
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        untagged = mlflow.create_experiment("search-old")
        genai = mlflow.create_experiment(
            "search-genai", tags={EXPERIMENT_KIND_TAG: "genai_development"}
        )
        for name, exp_id in (("search-old", untagged), ("search-genai", genai)):
            assert use_experiment(name).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
            stored = mlflow.get_experiment(exp_id).tags[EXPERIMENT_KIND_TAG]
            assert stored == "custom_model_development"
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture
def pipeline_files(sample_frames, tmp_path):
    """The sample as the pipeline keeps it: enriched queries and items, qrels, splits."""
    paths = {
        "queries": tmp_path / "enriched" / "queries.parquet",
        "items": tmp_path / "enriched" / "items.parquet",
        "qrels": tmp_path / "processed" / "qrels.parquet",
        "splits": tmp_path / "processed" / "splits.parquet",
    }
    for key, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        sample_frames[key].write_parquet(path)
    return paths


def test_evaluation_run_lists_its_datasets(pipeline_files, sample_frames, tmp_path):
    from shelflab.registry.tracking import evaluation_inputs

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    inputs = evaluation_inputs("sample", **pipeline_files, split_names=["valid", "test"])
    run_id = log_evaluation(
        tracking_uri=uri,
        experiment="search-sample",
        model_name="bm25",
        params={},
        metrics={"test_ndcg_at_10": 0.5},
        tags={},
        artifacts=[],
        inputs=inputs,
    )
    mlflow.set_tracking_uri(uri)
    try:
        logged = mlflow.get_run(run_id).inputs.dataset_inputs
    finally:
        mlflow.set_tracking_uri(None)
    got = {d.dataset.name: d for d in logged}
    assert sorted(got) == [
        "sample-items",
        "sample-qrels-test",
        "sample-qrels-valid",
        "sample-queries-test",
        "sample-queries-valid",
    ]
    context = {
        name: {t.key: t.value for t in d.tags}["mlflow.data.context"] for name, d in got.items()
    }
    assert context == {
        "sample-items": "catalog",
        "sample-qrels-test": "test",
        "sample-qrels-valid": "valid",
        "sample-queries-test": "test",
        "sample-queries-valid": "valid",
    }
    f = sample_frames
    for split in ("valid", "test"):
        ids = f["splits"].filter(pl.col("split") == split).select("query_id")
        for kind in ("queries", "qrels"):
            part = f[kind].join(ids, on="query_id", how="semi")
            ds = got[f"sample-{kind}-{split}"].dataset
            assert ds.digest == mlflow.data.from_polars(part).digest
            assert json.loads(ds.profile)["num_rows"] == part.height > 0
            assert json.loads(ds.source) == {"uri": str(pipeline_files[kind].resolve())}
            assert ds.source_type == "local"
    items = got["sample-items"].dataset
    assert items.digest == mlflow.data.from_polars(f["items"]).digest
    assert json.loads(items.profile)["num_rows"] == f["items"].height
    schema = json.loads(items.schema)["mlflow_colspec"]
    assert {"item_id", "text"} <= {c["name"] for c in schema}
    # same data, same digest: two splits differ, the test queries are the same file's rows
    assert got["sample-queries-test"].dataset.digest != got["sample-queries-valid"].dataset.digest


def test_evaluation_inputs_leave_out_missing_files(pipeline_files, tmp_path):
    from shelflab.registry.tracking import evaluation_inputs

    files = {**pipeline_files, "items": tmp_path / "none.parquet"}
    names = [t.name for t in evaluation_inputs("d", **files, split_names=["test"])]
    assert names == ["d-queries-test", "d-qrels-test"]
    files = {**pipeline_files, "splits": tmp_path / "none.parquet"}
    assert [t.name for t in evaluation_inputs("d", **files, split_names=["test"])] == ["d-items"]


def test_leaderboard_metrics_shown_first(tmp_path):
    from shelflab.registry.tracking import LEADERBOARD_VIEW, VIEW_TAG_PREFIX

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    shown = ["test_ndcg_at_10", "test_recall_at_100", "test_mrr"]

    def log(metrics):
        log_evaluation(
            tracking_uri=uri,
            experiment="search-x",
            model_name="bm25",
            params={},
            metrics={m: 0.5 for m in metrics},
            tags={},
            artifacts=[],
            shown_metrics=metrics,
        )
        return MlflowClient(uri).get_experiment_by_name("search-x").tags

    tags = log(shown)
    assert tags["mlflow.experiment.primaryMetric.name"] == "test_ndcg_at_10"
    assert tags["mlflow.experiment.primaryMetric.greaterIsBetter"] == "True"
    view = json.loads(tags[VIEW_TAG_PREFIX + LEADERBOARD_VIEW])
    # the envelope the UI's saved views read: name, createdAt, updatedAt, state (a JSON string)
    assert view["name"] and isinstance(view["createdAt"], int) and view["updatedAt"]
    state = json.loads(view["state"])
    assert state["selectedColumns"] == [
        "attributes.`Source`",
        "attributes.`Models`",
        "attributes.`Dataset`",
        "metrics.`test_ndcg_at_10`",
        "metrics.`test_recall_at_100`",
        "metrics.`test_mrr`",
    ]
    assert state["orderByKey"] == "metrics.`test_ndcg_at_10`" and state["orderByAsc"] is False
    # the next run with the same metrics leaves the view as it was; other metrics update it
    assert (
        log(shown)[VIEW_TAG_PREFIX + LEADERBOARD_VIEW] == tags[VIEW_TAG_PREFIX + LEADERBOARD_VIEW]
    )
    again = json.loads(log(["test_mrr"])[VIEW_TAG_PREFIX + LEADERBOARD_VIEW])
    assert again["createdAt"] == view["createdAt"]
    assert json.loads(again["state"])["orderByKey"] == "metrics.`test_mrr`"


def test_every_look_at_the_test_split_is_counted(tmp_path):
    """MLflow records the count on each evaluation run (tag shelflab.test_looks) and the
    leaderboard reads it per model family; a valid-only evaluation is not a look."""
    from shelflab.registry.tracking import TEST_LOOKS_TAG

    uri = f"sqlite:///{tmp_path}/mlflow.db"

    def log(name, family, metrics):
        path = tmp_path / f"{name}.parquet"  # the per-query artifact the leaderboard reads
        per_query(np.full(20, 0.5)).write_parquet(path)
        return log_evaluation(
            tracking_uri=uri, experiment="looks", model_name=name, params={}, metrics=metrics,
            tags={"model_family": family}, artifacts=[path],
        )  # fmt: skip

    ids = [log("bm25", "bm25", {"test_ndcg_at_10": 0.5}) for _ in range(2)]
    ids.append(log("bm25_tuned", "bm25", {"test_ndcg_at_10": 0.6}))  # same family
    ids.append(log("bm25", "bm25", {"valid_ndcg_at_10": 0.5}))  # valid only: no look
    client = MlflowClient(uri)
    tags = [client.get_run(i).data.tags.get(TEST_LOOKS_TAG) for i in ids]
    assert tags == ["1", "2", "3", None]
    costs: dict = {}
    latest_per_query(uri, "looks", "test", costs)
    assert costs["bm25_tuned"]["test_looks"] == 3.0
    mlflow.set_tracking_uri("")
