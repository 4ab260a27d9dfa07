"""Two worker processes on one PostgreSQL study (a fresh database, dropped afterwards)."""

from __future__ import annotations

import pytest

BM25 = {"family": "bm25", "k1": 1.2, "b": 0.75, "method": "lucene", "stemmer": "english"}


@pytest.fixture
def pg_url(pg_database):
    return pg_database().replace("postgresql://", "postgresql+psycopg2://", 1)


def test_two_workers_share_one_study(pg_url, train_data, bm25_tune, tracking_uri):
    import optuna
    from optuna.trial import TrialState

    from shelflab.tuning.study import tune_model

    res = tune_model(
        "bm25",
        BM25,
        bm25_tune,
        train_data,
        storage=pg_url,
        workers=2,
        trials=8,
        tracking_uri=tracking_uri,
        experiment="tune-test-pg",
    )
    trials = optuna.load_study(study_name=res.study_name, storage=pg_url).trials
    assert res.n_trials == 8 and len(trials) == 8
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.number for t in trials) == list(range(8))
    workers = {t.user_attrs["worker"] for t in trials}
    assert workers == {0, 1}
    for w in workers:  # no worker proposed the same configuration twice
        mine = [tuple(sorted(t.params.items())) for t in trials if t.user_attrs["worker"] == w]
        assert len(mine) == len(set(mine)) == 4
    assert res.best_value == max(t.value for t in trials)
    assert res.best_params == max(trials, key=lambda t: t.value).params

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    parent = client.get_run(res.run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{res.run_id}'"
    )
    assert len(children) == 8
