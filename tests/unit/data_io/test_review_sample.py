"""The shipped review excerpts are exactly what scripts/make_review_sample.py builds."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
SAMPLE = ROOT / "data" / "sample" / "amazon"


def test_sample_is_rebuilt_byte_for_byte(tmp_path, data_dir):
    if not (data_dir / "amazon-2018-5core").is_dir():
        pytest.skip("../shared/data/amazon-2018-5core is absent")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_review_sample.py"),
         "--data-dir", str(data_dir), "--out", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in ("All_Beauty_5.sample.json.gz", "Gift_Cards_5.sample.json.gz"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


def test_checksums_match():
    import gzip

    for line in (SAMPLE / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        data = gzip.decompress((SAMPLE / f"{name}.gz").read_bytes())
        assert hashlib.sha256(data).hexdigest() == digest, name
