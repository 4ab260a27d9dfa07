"""Helpers shared by the Amazon loader tests (test_amazon_loaders.py, test_amazon_items.py):
synthetic 2018 review / metadata files, the 2023 fixture's folder and quarantine lookups.

Imported by name (`from amazon_helpers import ...`): pytest puts this folder on sys.path, as it
puts tests/ there for tests/plugins. The shared real-data fixture `amazon_dir` is in conftest.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl

from shelflab.quarantine import Quarantine

FIXTURE_2023 = Path(__file__).resolve().parents[2] / "fixtures" / "amazon2023"


def q_rows(q: Quarantine, reason: str) -> list[int]:
    return sorted(q.table().filter(pl.col("reason") == reason)["row"].to_list())


def review_2018(**fields: object) -> dict:
    base: dict = {
        "overall": 5.0,
        "verified": True,
        "reviewTime": "09 1, 2016",
        "reviewerID": "AUSER1",
        "asin": "B000000001",
        "reviewerName": "A Name",
        "reviewText": "Works well.",
        "summary": "Good",
        "unixReviewTime": 1472688000,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def write_lines(path: Path, lines: list[str], *, gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_reviews(path: Path, reviews: list[dict], *, gz: bool = False) -> Path:
    return write_lines(path, [json.dumps(r) for r in reviews], gz=gz)
