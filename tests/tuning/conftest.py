"""The shipped sample (data/sample: 500 queries, 6,204 items) as pipeline data, built with the
library calls the ingest/split/enrich stages make, plus a shared MLflow store per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelflab.config import load_params

REPO = Path(__file__).resolve().parents[2]

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
def params() -> dict:
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="session")
def sample_frames(params):
    """processed + enriched frames of the sample: items, queries, qrels, splits."""
    from shelflab.data_io.loaders import load_search_dataset
    from shelflab.enrich import normalize_frame
    from shelflab.quarantine import Quarantine
    from shelflab.split import split_queries

    data = params["data"]
    ds = load_search_dataset(
        data["format"],
        REPO / "data" / "sample",
        grade_mapping=data.get("grade_mapping", "minus_one"),
        quarantine=Quarantine(),
    )
    cfg = params["split"]
    splits = split_queries(ds.queries, fractions=tuple(cfg["fractions"]), seed=cfg["seed"])
    return {
        "items": normalize_frame(ds.items, params["enrich"]),
        "queries": normalize_frame(ds.queries, params["enrich"]),
        "qrels": ds.qrels,
        "splits": splits,
    }


@pytest.fixture(scope="session")
def train_data(sample_frames):
    from shelflab.models.base import TrainData
    from shelflab.pipeline import split_frame

    f = sample_frames
    return TrainData(
        items=f["items"].select("item_id", "text"),
        train_queries=split_frame(f["queries"], f["splits"], "train"),
        train_qrels=split_frame(f["qrels"], f["splits"], "train"),
        valid_queries=split_frame(f["queries"], f["splits"], "valid"),
        valid_qrels=split_frame(f["qrels"], f["splits"], "valid"),
    )


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    """One MLflow sqlite store for the whole folder (its migration costs seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def bm25_tune() -> dict:
    import copy

    return copy.deepcopy(BM25_TUNE)
