"""Servers that are down fail fast with one line; the README's plain `postgresql://` URIs work
(real PostgreSQL on 127.0.0.1:5432, real MLflow and Optuna stores, real sockets)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from plugins.postgres import pg_up

from shelflab.config import database_url
from shelflab.errors import ConfigError
from shelflab.servers import check_reachable

BIN = Path(sys.executable).parent


@pytest.fixture
def pg_plain_urls(pg_database):
    """Two fresh databases (MLflow and Optuna each keep their own alembic version table)."""
    return [pg_database(), pg_database()]


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_plain_postgresql_scheme_uses_the_installed_driver(monkeypatch):
    url = "postgresql://postgres@127.0.0.1:5432/test"
    assert (
        database_url(url) == "postgresql+psycopg2://postgres@127.0.0.1:5432/test?connect_timeout=10"
    )
    monkeypatch.setenv("SHELFLAB_CONNECT_TIMEOUT", "3")
    assert database_url("postgres://u@h/db?sslmode=disable") == (
        "postgresql+psycopg2://u@h/db?sslmode=disable&connect_timeout=3"
    )
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv("SHELFLAB_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="SHELFLAB_CONNECT_TIMEOUT='soon'"):
        database_url(url)


def test_plain_postgresql_uri_works_for_mlflow_and_optuna(pg_plain_urls, tmp_path):
    import mlflow
    import optuna

    from shelflab.config import tracking_uri
    from shelflab.registry.tracking import use_tracking_uri
    from shelflab.tuning.storage import resolve_storage

    mlflow_db, optuna_db = pg_plain_urls
    uri = tracking_uri({"mlflow": {"tracking_uri": mlflow_db}}, tmp_path)
    use_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("plain-uri", artifact_location=str(tmp_path))
        assert mlflow.get_experiment(experiment).name == "plain-uri"
    finally:
        mlflow.set_tracking_uri("")
    storage = resolve_storage(optuna_db)
    study = optuna.create_study(study_name="plain-uri", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="plain-uri", storage=storage).trials) == 2


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("postgresql://postgres@127.0.0.1:{port}/test", "Connection refused"),
        ("postgresql://postgres@127.0.0.1:5432/shelflab_no_such_db", "does not exist"),
        ("http://127.0.0.1:{port}", "Connection refused"),
    ],
)
def test_a_store_that_is_down_is_one_line_within_seconds(url, cause, closed_port):
    if "5432" in url and not pg_up():
        pytest.skip("PostgreSQL not running")
    url = url.format(port=closed_port)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        check_reachable(url, "MLflow tracking store")
    message = str(err.value)
    assert "\n" not in message and cause in message
    assert message.startswith("MLflow tracking store ") and "is not reachable" in message
    assert time.perf_counter() - start < 10


def test_a_server_that_never_answers_times_out(monkeypatch):
    """Accepts the connection, never replies: bounded by SHELFLAB_CONNECT_TIMEOUT."""
    monkeypatch.setenv("SHELFLAB_CONNECT_TIMEOUT", "1")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        start = time.perf_counter()
        with pytest.raises(ConfigError, match=r"timed out .*waited up to 1 s"):
            check_reachable(f"http://127.0.0.1:{port}/", "MLflow tracking store")
        assert time.perf_counter() - start < 5


def test_cli_with_a_tracking_server_down_fails_fast(tmp_path, closed_port):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed_port}"}
    start = time.perf_counter()
    command = [str(BIN / "shelflab"), "leaderboard", "--experiment", "search-x"]
    proc = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        f"shelflab: error: MLflow tracking store http://127.0.0.1:{closed_port}"
    )
    assert time.perf_counter() - start < 30


def test_an_unknown_tracking_scheme_is_one_line(tmp_path):
    from shelflab.registry.tracking import use_tracking_uri

    with pytest.raises(ConfigError, match=r"unknown scheme 'foo' \(expected a path, file:"):
        use_tracking_uri("foo://somewhere/x")


HOLD = """
import json, os, sys, time
from shelflab.registry.aliases import registry_lock
with registry_lock(sys.argv[1], "shelflab-lock-test"):
    start = time.time()
    time.sleep(1.5)
    print(json.dumps([start, time.time()]))
"""


def test_alias_moves_are_serialised_across_machines_by_the_database(pg_plain_urls, tmp_path):
    """Two processes that share only the PostgreSQL database (each its own temp dir, so the
    file lock cannot serialise them): their alias-lock sections never overlap."""
    url = pg_plain_urls[0]
    procs = []
    for i in range(2):
        env = {**os.environ, "TMPDIR": str(tmp_path / f"machine{i}")}
        (tmp_path / f"machine{i}").mkdir()
        procs.append(
            subprocess.Popen([sys.executable, "-c", HOLD, url], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        )  # fmt: skip
    spans = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        spans.append(json.loads(out))
    (_, a1), (b0, _) = sorted(spans)
    assert a1 <= b0, spans  # the second started after the first released the lock
    # and the same code on a sqlite store (no database lock) does not serialise them
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLD, f"sqlite:///{tmp_path}/m.db"],
            env={**os.environ, "TMPDIR": str(tmp_path / f"machine{i}")},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]  # fmt: skip
    spans = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    (_, a1), (b0, _) = sorted(spans)
    assert b0 < a1  # overlapped: the test above would catch a lock that did nothing


def test_lock_url_must_be_postgresql(monkeypatch):
    from shelflab.registry.aliases import lock_database

    monkeypatch.setenv("SHELFLAB_LOCK_URL", "sqlite:///x.db")
    with pytest.raises(ConfigError, match="SHELFLAB_LOCK_URL: expected a postgresql:// URL"):
        lock_database("http://127.0.0.1:5000")
    monkeypatch.setenv("SHELFLAB_LOCK_URL", "postgresql://postgres@127.0.0.1:5432/test")
    assert lock_database("http://127.0.0.1:5000").startswith("postgresql+psycopg2://")
    monkeypatch.delenv("SHELFLAB_LOCK_URL")
    assert lock_database("sqlite:///m.db") is None


def test_a_chroma_server_that_is_down_is_one_line(closed_port):
    from shelflab.models.chroma_index import _http_client

    with pytest.raises(
        ConfigError, match=rf"Chroma server http://127.0.0.1:{closed_port} is not reachable"
    ):
        _http_client(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(ConfigError, match="chroma_url must look like http://host:port"):
        _http_client("127.0.0.1:8000")
