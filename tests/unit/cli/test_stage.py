"""run_stage: the one entry point of the stage scripts (timings file, one-line errors)."""

import json
import os

import pytest

from shelflab.cli.stage import QUIET_ENV, run_stage
from shelflab.config import TELEMETRY_OFF
from shelflab.errors import InputError

pytestmark = pytest.mark.unit


@pytest.fixture
def repo(tmp_path, monkeypatch):
    for key in [*QUIET_ENV, *TELEMETRY_OFF]:  # run_stage sets defaults: undone after the test
        monkeypatch.setenv(key, os.environ.get(key, "-"))
        if os.environ[key] == "-":
            monkeypatch.delenv(key)
    (tmp_path / "params.yaml").write_text("data: {}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_stage_writes_its_timings_file(repo, capsys):
    run_stage("train@bm25", lambda name: print(f"fitting {name}"), "bm25")
    record = json.loads((repo / "metrics" / "timings" / "train@bm25.json").read_text())
    assert {"wall_s", "cpu_s", "peak_rss_mib"} <= set(record)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "fitting bm25"
    assert out[-1].startswith("train@bm25: wall ")


def test_a_shelflab_error_is_one_line_and_exit_1(repo, capsys, monkeypatch):
    monkeypatch.delenv("SHELFLAB_DEBUG", raising=False)

    def bad() -> None:
        raise InputError("no such file", path="data/x.csv", expected="a CSV file")

    with pytest.raises(SystemExit) as exit_:
        run_stage("ingest", bad)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ingest: error: data/x.csv")
    assert "Traceback" not in err
    assert not (repo / "metrics" / "timings" / "ingest.json").exists()


def test_debug_keeps_the_traceback(repo, monkeypatch):
    monkeypatch.setenv("SHELFLAB_DEBUG", "1")
    with pytest.raises(InputError):
        run_stage("ingest", lambda: (_ for _ in ()).throw(InputError("bad", path="x")))


def test_an_unexpected_error_is_not_hidden(repo):
    with pytest.raises(ZeroDivisionError):
        run_stage("split", lambda: 1 / 0)


def test_an_int_result_is_the_exit_status(repo):
    with pytest.raises(SystemExit) as exit_:
        run_stage("drift@batch", lambda: 3)
    assert exit_.value.code == 3
    assert (repo / "metrics" / "timings" / "drift@batch.json").exists()


def test_none_result_exits_normally(repo):
    run_stage("code", lambda: None)  # no SystemExit
