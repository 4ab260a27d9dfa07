"""The shipped excerpt data/sample/: small, documented, checksummed, reproducible."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "sample"


def _make_sample_module():
    spec = importlib.util.spec_from_file_location(
        "make_sample", REPO / "scripts" / "make_sample.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sample_is_small_and_documented():
    files = sorted(p.name for p in SAMPLE.iterdir())
    assert {"README.md", "SHA256SUMS", "train.csv.gz", "products.csv.gz"} <= set(files)
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 2_000_000
    readme = (SAMPLE / "README.md").read_text()
    for needle in ("Kaggle", "non-commercial", "scripts/make_sample.py", "3,079", "6,204"):
        assert needle in readme


def test_checksums_match():
    for line in (SAMPLE / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        body = gzip.decompress((SAMPLE / f"{name}.gz").read_bytes())
        assert hashlib.sha256(body).hexdigest() == digest, name


def test_same_format_as_the_originals():
    train = gzip.decompress((SAMPLE / "train.csv.gz").read_bytes())
    assert train.startswith(b'"id","product_uid","product_title","search_term","relevance"\n')
    products = gzip.decompress((SAMPLE / "products.csv.gz").read_bytes())
    assert products.startswith(b'"product_uid","product_title"\n')
    assert b"\xe5\xa1" in products  # latin-1 mojibake bytes kept as in the original
    products.decode("latin-1")


def test_rebuild_is_byte_identical(data_dir, tmp_path):
    counts = _make_sample_module().make_sample(data_dir, tmp_path)
    assert counts["terms"] == 500 and counts["train_rows"] == 3079
    for name in ("train.csv.gz", "products.csv.gz", "SHA256SUMS"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
