"""Optuna studies on the shipped sample: determinism, tuned JSON, failing trials, resume,
MLflow nesting, hybrid fusion caching and the CLI."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from shelflab.errors import ConfigError
from shelflab.tuning.objective import Evaluator
from shelflab.tuning.results import TuningError
from shelflab.tuning.study import tune_model
from shelflab.tuning.tuned import apply_tuned, tuned_path, tuned_spec, write_tuned

BM25 = {"family": "bm25", "k1": 1.2, "b": 0.75, "method": "lucene", "stemmer": "english"}


def sqlite(tmp_path, name="optuna.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def test_same_seed_same_best_params_and_tuned_json(tmp_path, train_data, bm25_tune):
    a = tune_model("bm25", BM25, bm25_tune, train_data, storage=sqlite(tmp_path, "a.db"))
    b = tune_model("bm25", BM25, bm25_tune, train_data, storage=sqlite(tmp_path, "b.db"))
    assert a.n_trials == b.n_trials == 6 and a.n_complete == 6
    assert a.best_params == b.best_params
    assert a.best_value == pytest.approx(b.best_value)
    assert a.study_name == b.study_name  # derived from model, spec, space, seed, data
    assert 0.0 < a.best_value <= 1.0

    path = tuned_path(tmp_path, "bm25")
    write_tuned(path, a)
    tuned = json.loads(path.read_text())
    assert tuned["model"] == "bm25" and tuned["seed"] == 42 and tuned["n_trials"] == 6
    assert tuned["metric"] == "ndcg@10" and tuned["study"] == a.study_name
    assert tuned["params"] == {**BM25, **a.best_params}
    assert apply_tuned(BM25, path) == {**BM25, **a.best_params}
    # train reads the file when it exists, params.yaml values otherwise
    assert tuned_spec(tmp_path, "bm25", {**BM25, "stopwords": "none"}) == {
        **BM25,
        "stopwords": "none",
        **a.best_params,
    }
    assert tuned_spec(tmp_path, "dense", {"family": "dense"}) == {"family": "dense"}

    # the study exists now: without --resume that is an error that says what to do
    with pytest.raises(TuningError, match="--resume"):
        tune_model("bm25", BM25, bm25_tune, train_data, storage=sqlite(tmp_path, "a.db"))
    # resuming a complete study runs nothing and reports the same best
    again = tune_model(
        "bm25", BM25, bm25_tune, train_data, storage=sqlite(tmp_path, "a.db"), resume=True
    )
    assert again.n_trials == 6 and again.best_params == a.best_params


def test_failing_trials_are_failed_and_logged_as_nested_runs(
    tmp_path, train_data, bm25_tune, tracking_uri
):
    import mlflow
    from mlflow.tracking import MlflowClient

    # a negative k1 is rejected by the model's param check: those trials raise
    bm25_tune["models"]["bm25"]["space"]["k1"] = {"type": "float", "low": -2.0, "high": 2.0}
    storage = sqlite(tmp_path)
    res = tune_model(
        "bm25",
        BM25,
        bm25_tune,
        train_data,
        storage=storage,
        tracking_uri=tracking_uri,
        experiment="tune-test",
        tags={"track": "search", "dataset": "sample"},
    )
    study = optuna.load_study(study_name=res.study_name, storage=storage)
    states = [t.state for t in study.trials]
    assert len(states) == 6 and res.n_trials == 6
    assert TrialState.FAIL in states and TrialState.COMPLETE in states
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert all("k1" in t.user_attrs["error"] and t.params["k1"] < 0 for t in failed)
    assert res.best_params["k1"] >= 0

    client = MlflowClient(tracking_uri)
    parent = client.get_run(res.run_id)
    assert parent.data.tags["shelflab.kind"] == "tuning"
    assert parent.data.tags["shelflab.model"] == "bm25"
    assert parent.data.tags["dataset"] == "sample"
    assert parent.data.metrics["best_valid_ndcg_at_10"] == pytest.approx(res.best_value)
    assert float(parent.data.params["best.k1"]) == pytest.approx(res.best_params["k1"])
    children = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{res.run_id}'",
        output_format="list",
    )
    assert len(children) == 6
    by_state = {c.data.tags["optuna.state"]: c.info.status for c in children}
    assert by_state == {"COMPLETE": "FINISHED", "FAIL": "FAILED"}
    ok = [c for c in children if c.info.status == "FINISHED"]
    assert max(c.data.metrics["valid_ndcg_at_10"] for c in ok) == pytest.approx(res.best_value)
    plots = {a.path for a in client.list_artifacts(res.run_id, "plots")}
    assert "plots/optimization_history.png" in plots
    assert "plots/param_importances.png" in plots


def test_resume_after_kill_keeps_finished_trials(tmp_path, train_data, bm25_tune):
    storage = sqlite(tmp_path)
    first = tune_model("bm25", BM25, bm25_tune, train_data, storage=storage, trials=3)
    # simulate a process killed mid-trial: one trial left RUNNING in the storage
    study = optuna.load_study(study_name=first.study_name, storage=storage)
    before = [(t.number, t.params, t.value) for t in study.trials]
    study.ask()
    assert study.trials[-1].state == TrialState.RUNNING

    res = tune_model("bm25", BM25, bm25_tune, train_data, storage=storage, resume=True)
    trials = optuna.load_study(study_name=first.study_name, storage=storage).trials
    assert res.n_trials == 6 and len(trials) == 6
    assert [(t.number, t.params, t.value) for t in trials[:3]] == before
    assert trials[3].state == TrialState.FAIL and "stale" in trials[3].user_attrs["error"]
    assert [t.state for t in trials[4:]] == [TrialState.COMPLETE] * 2
    assert res.best_value == max(t.value for t in trials if t.value is not None)


def test_hybrid_component_runs_are_computed_once(tmp_path, train_data):
    hybrid = {
        "family": "hybrid",
        "components": {"bm25": BM25, "bm25_raw": {**BM25, "stemmer": "none"}},
        "method": "rrf",
        "weights": [0.5, 0.5],
        "depth": 100,
    }
    cfg = {
        "seed": 1,
        "models": {
            "hybrid": {
                "trials": 4,
                "space": {
                    "method": {"type": "categorical", "choices": ["rrf", "weighted"]},
                    "rrf_k": {"type": "int", "low": 5, "high": 100, "log": True},
                    "weights": {"type": "split", "low": 0.1, "high": 0.9},
                },
            }
        },
    }
    res = tune_model("hybrid", hybrid, cfg, train_data, storage=None)
    assert res.n_complete == 4
    w = res.best_spec["weights"]
    assert w[0] == pytest.approx(res.best_params["weights"]) and sum(w) == pytest.approx(1.0)

    ev = Evaluator(train_data)
    a = ev.score("hybrid", {**hybrid, "method": "rrf", "rrf_k": 10})
    b = ev.score("hybrid", {**hybrid, "method": "weighted", "weights": [0.7, 0.3]})
    assert len(ev._runs) == 2  # one run per component, reused by every fusion
    assert a != b


def test_test_split_is_refused(train_data, bm25_tune):
    from shelflab.errors import ConfigError

    bm25_tune["split"] = "test"
    with pytest.raises(ConfigError, match="test split"):
        tune_model("bm25", BM25, bm25_tune, train_data, storage=None)


def test_cli_writes_tuned_json(tmp_path, monkeypatch, params, sample_frames, bm25_tune):
    import argparse

    import yaml

    from shelflab.cli.tuning import add_tune_parser

    # a pipeline root with the files enrich/split write
    for sub in ("data/processed", "data/enriched"):
        (tmp_path / sub).mkdir(parents=True)
    sample_frames["items"].write_parquet(tmp_path / "data/enriched/items.parquet")
    sample_frames["queries"].write_parquet(tmp_path / "data/enriched/queries.parquet")
    sample_frames["qrels"].write_parquet(tmp_path / "data/processed/qrels.parquet")
    sample_frames["splits"].write_parquet(tmp_path / "data/processed/splits.parquet")
    bm25_tune["models"]["bm25"]["trials"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**params, "tune": bm25_tune}))
    monkeypatch.chdir(tmp_path)

    parser = argparse.ArgumentParser()
    add_tune_parser(parser.add_subparsers(dest="command"))
    for model in ("bm25", "dense"):  # dense has no tune entry: pass-through
        args = parser.parse_args(["tune", "--model", model, "--no-mlflow"])
        args.handler(args)
    tuned = json.loads((tmp_path / "tuned/bm25.json").read_text())
    assert tuned["tuned"] is True and tuned["n_trials"] == 2
    assert (tmp_path / "optuna.db").is_file()  # default storage, anchored at the root
    untuned = json.loads((tmp_path / "tuned/dense.json").read_text())
    assert untuned["tuned"] is False and untuned["params"] == params["models"]["dense"]
    assert tuned_spec(tmp_path, "dense", params["models"]["dense"]) == params["models"]["dense"]


def test_iterative_trainer_is_pruned_on_its_valid_reports(tmp_path, train_data):
    """xgb_ltr reports valid ndcg@10 every `report_every` rounds; with the median pruner,
    trials behind the running median are stopped (PRUNED) and the study goes on."""
    spec = {
        "family": "xgb_ltr",
        "components": {"bm25": {"family": "bm25"}},
        "first_stage": "bm25",
        "candidates": 20,
        "n_estimators": 40,
        "early_stopping_rounds": 0,
        "report_every": 5,
        "features": ["scores", "lexical"],
    }
    cfg = {
        "seed": 3,
        "pruner": "median",
        "models": {
            "ltr": {
                "trials": 8,
                "space": {
                    "eta": {"type": "float", "low": 0.001, "high": 0.5, "log": True},
                    "max_depth": {"type": "int", "low": 1, "high": 8},
                    "objective": {"type": "categorical", "choices": ["rank:ndcg", "rank:map"]},
                },
            }
        },
    }
    result = tune_model("ltr", spec, cfg, train_data, storage=sqlite(tmp_path))
    study = optuna.load_study(study_name=result.study_name, storage=sqlite(tmp_path))
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert result.n_trials == 8 and len(pruned) + len(complete) == 8
    assert pruned, "the median pruner stopped no trial"
    for t in complete:  # 40 rounds, a report every 5
        assert sorted(t.intermediate_values) == list(range(1, 9))
    for t in pruned:
        last = max(t.intermediate_values)
        assert last < 8  # stopped before the end
        earlier = [
            c.intermediate_values[last]
            for c in study.trials
            if c.number < t.number and last in c.intermediate_values
        ]
        assert t.intermediate_values[last] < sorted(earlier)[len(earlier) // 2]
    assert result.best_value == max(t.value for t in complete)


def test_fixed_params_apply_to_trials_only(tmp_path, train_data):
    cfg = {
        "seed": 1,
        "models": {
            "bm25": {
                "trials": 3,
                "fixed": {"method": "robertson", "k1": 0.4},
                "space": {"b": {"type": "float", "low": 0.2, "high": 0.9}},
            }
        },
    }
    result = tune_model("bm25", BM25, cfg, train_data, storage=sqlite(tmp_path))
    assert result.best_spec == {**BM25, "b": result.best_params["b"]}  # fixed not written
    trial_spec = {**BM25, "method": "robertson", "k1": 0.4, "b": result.best_params["b"]}
    assert result.best_value == pytest.approx(Evaluator(train_data).score("bm25", trial_spec))
    assert result.best_value != pytest.approx(Evaluator(train_data).score("bm25", result.best_spec))


def test_trials_can_index_a_smaller_catalog(tmp_path, train_data):
    """`catalog: N`: every judged valid item plus a seeded sample, the same for every trial."""
    from shelflab.tuning.objective import trial_catalog

    items, qrels = train_data.items, train_data.valid_qrels
    judged = set(qrels["item_id"].cast(str).to_list()) & set(items["item_id"].to_list())
    size = len(judged) + 100
    small = trial_catalog(items, qrels, size, seed=3)
    assert small.height == size and judged <= set(small["item_id"].to_list())
    assert small.equals(trial_catalog(items, qrels, size, seed=3))
    assert not small.equals(trial_catalog(items, qrels, size, seed=4))
    assert trial_catalog(items, qrels, 10, seed=3).height == len(judged)  # judged ones stay

    cfg = {"seed": 1, "models": {"bm25": {"trials": 2, "catalog": size,
           "space": {"b": {"type": "float", "low": 0.2, "high": 0.9}}}}}  # fmt: skip
    result = tune_model("bm25", BM25, cfg, train_data, storage=sqlite(tmp_path))
    spec = result.best_spec
    on_small = Evaluator(train_data, catalog=size, seed=1).score("bm25", spec)
    assert result.best_value == pytest.approx(on_small)
    assert result.best_value != pytest.approx(Evaluator(train_data).score("bm25", spec))
    with pytest.raises(ConfigError, match=r"tune.models.bm25.catalog: expected a positive"):
        bad = {"bm25": {**cfg["models"]["bm25"], "catalog": 0}}
        tune_model("bm25", BM25, {"models": bad}, train_data)


def test_trials_can_score_a_sample_of_the_valid_queries(tmp_path, train_data):
    """`queries: N`: the same seeded N valid queries with a relevant item for every trial, with
    their own judgments only (no sampled-out query scored 0)."""
    from shelflab.evaluation.harness import evaluate
    from shelflab.tuning.objective import query_sample

    queries, qrels = train_data.valid_queries, train_data.valid_qrels
    judged = set(qrels.filter(qrels["grade"] >= 1)["query_id"].cast(str).to_list())
    assert len(judged) < qrels["query_id"].n_unique()  # some valid queries have no relevant item
    size = max(2, len(judged) // 3)
    sample, sample_qrels = query_sample(queries, qrels, size, seed=5)
    ids = sample["query_id"].cast(str).to_list()
    assert len(ids) == size and set(ids) <= judged
    assert set(sample_qrels["query_id"].cast(str).to_list()) == set(ids)
    assert sample_qrels.height == qrels.filter(qrels["query_id"].cast(str).is_in(ids)).height
    order = queries["query_id"].cast(str).to_list()
    assert ids == sorted(ids, key=order.index)  # split order kept
    assert sample.equals(query_sample(queries, qrels, size, seed=5)[0])
    assert not sample.equals(query_sample(queries, qrels, size, seed=6)[0])
    assert query_sample(queries, qrels, 10**6, seed=5)[0].height == len(judged)

    cfg = {"seed": 1, "models": {"bm25": {"trials": 2, "queries": size,
           "space": {"b": {"type": "float", "low": 0.2, "high": 0.9}}}}}  # fmt: skip
    result = tune_model("bm25", BM25, cfg, train_data, storage=sqlite(tmp_path))
    spec = result.best_spec
    # independently: the whole valid run, averaged over the study's sample (tune.seed 1) only
    ids = query_sample(queries, qrels, size, seed=1)[0]["query_id"].cast(str).to_list()
    full = Evaluator(train_data).model_run("bm25", spec)
    per_query = evaluate(qrels, full, ["ndcg@10"], relevance_threshold=1.0).per_query
    sampled = per_query.filter(per_query["query_id"].cast(str).is_in(ids))
    assert sampled.height == size
    assert result.best_value == pytest.approx(sampled["ndcg@10"].mean())
    assert result.best_value != pytest.approx(Evaluator(train_data).score("bm25", spec))
    with pytest.raises(ConfigError, match=r"tune.models.bm25.queries: expected a positive"):
        bad = {"bm25": {**cfg["models"]["bm25"], "queries": 0}}
        tune_model("bm25", BM25, {"models": bad}, train_data)


def test_resume_after_a_code_change_tunes_again(tmp_path, train_data, bm25_tune, monkeypatch):
    from shelflab.tuning import storage as study_storage

    db = sqlite(tmp_path)
    first = tune_model("bm25", BM25, bm25_tune, train_data, storage=db, trials=2)
    # other code ran those trials: the same search is another study, tuned from scratch
    monkeypatch.setattr(study_storage, "code_fingerprint", lambda: "other-code")
    again = tune_model("bm25", BM25, bm25_tune, train_data, storage=db, trials=2, resume=True)
    assert again.study_name != first.study_name and again.n_trials == 2
    assert len(optuna.load_study(study_name=again.study_name, storage=db).trials) == 2


def test_source_digest_follows_names_and_bytes(tmp_path):
    from shelflab.tuning.storage import source_digest

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "notes.txt").write_text("not code")
    first = source_digest(tmp_path)
    (tmp_path / "pkg" / "notes.txt").write_text("still not code")
    assert source_digest(tmp_path) == first
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    changed = source_digest(tmp_path)
    assert changed != first
    (tmp_path / "pkg" / "a.py").rename(tmp_path / "pkg" / "b.py")
    assert source_digest(tmp_path) not in (first, changed)
