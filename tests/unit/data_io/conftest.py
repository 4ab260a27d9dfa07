"""Fixtures shared by the data_io tests: the real Amazon 2018 5-core folder (skipped if absent).
Plain helpers for the Amazon tests are in amazon_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

AMAZON = "amazon-2018-5core"


@pytest.fixture(scope="module")
def amazon_dir(data_dir: Path) -> Path:
    d = data_dir / AMAZON
    if not d.is_dir():
        pytest.skip(f"{d} not found (the Amazon 2018 5-core files of ../shared/data)")
    return d
