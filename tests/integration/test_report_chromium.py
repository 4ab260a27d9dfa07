"""`shelflab report`: the static page is built from a real store and loaded by a real headless
Chromium (Debian's, installed by scripts/bootstrap.sh), which must find the tables in the DOM.
The screenshot is kept under .test-artifacts/ (ignored by git)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shelflab.registry.promote import promote
from shelflab.registry.report import build_report

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: scripts/bootstrap.sh installs Debian's chromium")
        pytest.skip("chromium not installed (scripts/bootstrap.sh installs it)")
    return path


def test_report_page_in_headless_chromium(tmp_path, store, name, built, publisher, promote_cfg):
    browser = chromium()
    v_dense = publisher(name, built["dense"])
    v_bm25 = publisher(name, built["bm25"])
    promote(store, name, v_dense, promote_cfg(), "test")
    promote(store, name, v_bm25, promote_cfg(), "test")
    page = build_report(
        uri=store,
        experiment="search-sample-test",
        registered=name,
        split="test",
        metric="ndcg@10",
        metrics=["ndcg@10", "recall@100", "mrr"],
        baseline="bm25",
        out_dir=tmp_path / "report",
    )
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert '<table id="leaderboard">' in dom and '<table id="alias-history">' in dom
    board = dom.split('<table id="leaderboard">', 1)[1].split("</table>", 1)[0]
    assert board.count("<tr>") == 3  # header + bm25 + dense
    assert "bm25" in board and "dense" in board and "baseline" in board
    history = dom.split('<table id="alias-history">', 1)[1].split("</table>", 1)[0]
    assert "initial" in history and "promote" in history
    assert "Challenger vs champion, per query" in dom and "data:image/png;base64," in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1280,1800", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
