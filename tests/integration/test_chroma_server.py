"""The dense index through a real Chroma server (`chroma run --path DIR --port P` on 127.0.0.1)
instead of the embedded persistent client: built, reopened and searched over HTTP."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from shelflab.models import create, open_model


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory, free_port):
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists():
        exe = Path(shutil.which("chroma") or "chroma")
    root = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("chroma did not start: " + (root / "server.log").read_text())
            time.sleep(0.5)
        yield url, root / "data"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_dense_index_on_a_chroma_server(chroma_server, dense_dirs, ctx, items, queries, tmp_path):
    # dense_dirs first: the session's own dense build must be the one that fills the embedding
    # cache (test_dense checks that), this one reuses it
    url, data = chroma_server
    spec = {"family": "dense", "search": "chroma", "chroma_url": url}
    model = create("dense_srv", spec, ctx)
    model_dir, index_dir = tmp_path / "model", tmp_path / "index"
    model_dir.mkdir()
    index_dir.mkdir()
    model.save(model_dir)
    model.build_index(items, index_dir)
    assert not (index_dir / "chroma").exists()  # the vectors live on the server
    assert any(data.rglob("chroma.sqlite3"))
    reopened = open_model(model_dir, index_dir, ctx)
    try:
        q = reopened.embed_queries(queries["text"].to_list()[:50])
        ids, scores = reopened.search_chroma(q, 10)
        exact_idx, exact_scores = reopened.search_exact(q, 10)
        exact_ids = reopened._ids[exact_idx]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids, strict=True)])
        assert recall >= 0.95
        np.testing.assert_allclose(scores[0][:1], exact_scores[0][:1], atol=1e-4)
        run = reopened.retrieve(queries.head(5), 10)
        assert run.height == 50
    finally:
        reopened.close()


def test_unreachable_server_is_a_clear_error(dense_dirs, ctx, items, tmp_path, free_port):
    spec = {"family": "dense", "chroma_url": f"http://127.0.0.1:{free_port()}"}
    model = create("dense_down", spec, ctx)
    with pytest.raises(Exception, match=r"(?i)connect|refused|chroma"):
        model.build_index(items.head(20), tmp_path)
