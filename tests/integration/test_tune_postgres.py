"""Two worker processes on one PostgreSQL study (a fresh database, dropped afterwards)."""

from __future__ import annotations

import socket
import uuid

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
BM25 = {"family": "bm25", "k1": 1.2, "b": 0.75, "method": "lucene", "stemmer": "english"}


def _reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def pg_url():
    if not _reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}")
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"shelflab_tune_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="test")
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        yield f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


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
