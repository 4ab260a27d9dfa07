"""The ingest stage's data sanity gate, through the real stage script on real Home Depot rows:
a file that leaves nothing (or too little) after the quarantine stops the pipeline with one
line and writes nothing."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shelflab.quarantine import Quarantine

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "sample"


def sample_lines() -> list[str]:
    raw = gzip.decompress((SAMPLE / "train.csv.gz").read_bytes())
    return raw.decode("latin-1").splitlines()  # Home Depot's files are latin-1


def run_ingest(
    tmp_path: Path, train_lines: list[str], min_kept: float | None = None
) -> subprocess.CompletedProcess:
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(SAMPLE / "products.csv.gz", raw / "products.csv.gz")
    (raw / "train.csv.gz").write_bytes(
        gzip.compress(("\n".join(train_lines) + "\n").encode("latin-1"))
    )
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"] |= {"dir": "raw"} | ({"min_kept_fraction": min_kept} if min_kept else {})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / "ingest.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_header_only_file_stops_ingest(tmp_path):
    proc = run_ingest(tmp_path, sample_lines()[:1])
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"ingest: error: {tmp_path / 'raw'}: no usable judgments "
        "(expected judgments in the documented format)"
    ]
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics" / "ingest.json").exists()


def test_mostly_unusable_rows_stop_ingest_below_the_fraction(tmp_path):
    lines = sample_lines()
    # 40 good rows, then 200 rows whose relevance is not a number
    bad = [",".join([*line.split(",")[:-1], "x"]) for line in lines[41:241]]
    proc = run_ingest(tmp_path, lines[:41] + bad)
    assert proc.returncode == 1, proc.stdout
    # the quarantine's own warning, then the one error line
    *_, line = proc.stderr.strip().splitlines()
    assert proc.stderr.count("error:") == 1
    assert line.startswith(f"ingest: error: {tmp_path / 'raw'}: only 40 of 240 judgments usable")
    assert "at least data.min_kept_fraction = 0.5" in line
    assert not (tmp_path / "data").exists()
    # the same file with the gate lowered goes through and prints its quarantine
    shutil.rmtree(tmp_path / "raw")
    ok = run_ingest(tmp_path, lines[:41] + bad, min_kept=0.1)
    assert ok.returncode == 0, ok.stderr
    assert "ingest: quarantined 200 rows (" in ok.stdout


def test_require_kept_counts():
    q = Quarantine()
    q.require_kept(5, unit="rows", source="f")  # nothing quarantined: fine
    import polars as pl

    q.add(pl.DataFrame({"x": list(range(6))}), source="f", reason="bad grade")
    with pytest.raises(
        Exception, match=r"f: only 5 of 11 rows usable \(45%\); quarantined: 6 bad grade"
    ):
        q.require_kept(5, unit="rows", source="f")
    q.require_kept(5, unit="rows", source="f", min_fraction=0.4)
    assert q.summary_line() == "quarantined 6 rows (bad grade: 6)"
