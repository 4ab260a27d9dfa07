"""The shipped sequence excerpts are exactly what scripts/make_sequence_sample.py builds."""

import gzip
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]
SAMPLE = ROOT / "data" / "sample" / "sequences"


def test_sample_is_rebuilt_byte_for_byte(tmp_path, data_dir):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sequence_sample.py"),
         "--data-dir", str(data_dir), "--out", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    shipped = sorted(p.name for p in SAMPLE.glob("*.gz"))
    assert sorted(p.name for p in tmp_path.glob("*.gz")) == shipped
    for name in shipped:
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


def test_checksums_match():
    lines = (SAMPLE / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == len(list(SAMPLE.glob("*.gz")))
    for line in lines:
        digest, name = line.split()
        data = gzip.decompress((SAMPLE / f"{name}.gz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == digest, name
