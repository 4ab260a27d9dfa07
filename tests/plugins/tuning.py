"""Tuning fixtures: a small bm25 search space and a shared MLflow store per session (the
sample's frames and train data come from tests/conftest.py)."""

from __future__ import annotations

import pytest

BM25_TUNE = {
    "metric": "ndcg@10",
    "split": "valid",
    "seed": 42,
    "sampler": "tpe",
    "models": {
        "bm25": {
            "trials": 6,
            "space": {
                "k1": {"type": "float", "low": 0.5, "high": 2.5},
                "b": {"type": "float", "low": 0.3, "high": 1.0},
                "method": {"type": "categorical", "choices": ["lucene", "robertson", "bm25+"]},
            },
        }
    },
}


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One MLflow sqlite store for the whole folder (its migration costs seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def bm25_tune() -> dict:
    import copy

    return copy.deepcopy(BM25_TUNE)
