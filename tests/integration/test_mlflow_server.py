"""The registry through a real `mlflow server` on 127.0.0.1 with a PostgreSQL backend store (a
fresh database, dropped afterwards) and proxied artifacts: register, promote, load by alias in a
fresh process, roll back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import polars as pl
import pytest

from shelflab.registry.aliases import CHAMPION, current, history, rollback
from shelflab.registry.promote import promote


@pytest.fixture(scope="module")
def server(tmp_path_factory, free_port, pg_module_database):
    backend = pg_module_database().replace("postgresql://", "postgresql+psycopg2://", 1)
    port = free_port()
    root = tmp_path_factory.mktemp("mlflow-server")
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(
                    "mlflow server did not start: " + (root / "server.log").read_text()[-3000:]
                )
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_register_promote_load_rollback_through_a_server(
    server, name, built, publisher, promote_cfg, sample_all, tmp_path
):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(server)
    c = MlflowClient(server)
    cfg = promote_cfg()
    v_dense = publisher(name, built["dense"], uri=server)
    promote(server, name, v_dense, cfg, "test")
    v_bm25 = publisher(name, built["bm25"], uri=server)
    assert promote(server, name, v_bm25, cfg, "test").decision.promote
    assert current(c, name, CHAMPION) == v_bm25

    # a fresh process loads the champion through the server (artifacts proxied by it)
    queries = sample_all["queries"].head(3).select("query_id", pl.col("raw_text").alias("text"))
    queries.write_parquet(tmp_path / "q.parquet")
    code = (
        "import sys, mlflow, polars as pl\n"
        f"m = mlflow.pyfunc.load_model('models:/{name}@champion')\n"
        "out = m.predict(pl.read_parquet(sys.argv[1]).to_pandas(), params={'k': 5})\n"
        "print(out.groupby('query_id').size().max(), *sorted(set(out['query_id'])))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "q.parquet")],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "MLFLOW_TRACKING_URI": server,
            "SHELFLAB_CACHE_DIR": str(tmp_path / "cache"),
        },
    )
    most, *ids = done.stdout.split()
    assert most == "5" and len(ids) > 0 and set(ids) <= set(queries["query_id"].to_list())

    rollback(c, server, name, why="server test")
    assert current(c, name, CHAMPION) == v_dense
    moves = history(c, name)
    assert [m.action for m in moves if m.alias == CHAMPION] == ["initial", "promote", "rollback"]
