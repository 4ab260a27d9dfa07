"""Two real pipelines on the shipped sample (bm25, and dense MiniLM without Chroma), evaluated on
all 500 sample queries (split "test": enough queries for the paired test to separate them), and
a helper that publishes one to an MLflow store the way evaluate@ does: an evaluation run with
its per-query artifact, then a registered pyfunc version."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

EVAL_CFG = {
    "splits": ["test"],
    "k": 100,
    "metrics": ["ndcg@10", "recall@100", "mrr"],
    "curve_ks": [10, 100],
    "latency_queries": 20,
    "relevance_threshold": 1.0,
    "bootstrap": {"n_resamples": 200, "confidence": 0.95, "seed": 0},
}
SPECS = {
    "bm25": {"family": "bm25", "k1": 1.2, "b": 0.75, "method": "lucene", "stemmer": "english"},
    "dense": {"family": "dense", "chroma": False},
}
TAGS = {"track": "search", "dataset": "sample-test", "git_commit": "test", "data_hash": "test"}


@dataclass
class Built:
    key: str
    model_dir: Path
    index_dir: Path
    report: Any
    family: str
    params: dict


@pytest.fixture(scope="session")
def sample_all(sample_frames):
    """Every sample query in one split named "test"."""
    f = sample_frames
    splits = f["queries"].select("query_id", pl.lit("test").alias("split"))
    return {**f, "splits": splits}


@pytest.fixture(scope="session")
def built(tmp_path_factory, sample_all) -> dict[str, Built]:
    from shelflab.models import ModelContext, create, open_model
    from shelflab.pipeline.evaluate import evaluate_model

    cache = tmp_path_factory.mktemp("cache")
    out = {}
    for key, spec in SPECS.items():
        root = tmp_path_factory.mktemp(key)
        model_dir, index_dir = root / "model", root / "index"
        model_dir.mkdir()
        index_dir.mkdir()
        ctx = ModelContext(cache_dir=cache)
        model = create(key, spec, ctx)
        model.save(model_dir)
        model.build_index(sample_all["items"].select("item_id", "text"), index_dir)
        opened = open_model(model_dir, index_dir, ctx)
        try:
            report = evaluate_model(
                opened,
                sample_all["queries"].select("query_id", "text"),
                sample_all["qrels"],
                sample_all["splits"],
                EVAL_CFG,
            )
        finally:
            opened.close()
        out[key] = Built(key, model_dir, index_dir, report, opened.family, opened.params)
    return out


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def name() -> str:
    """A registered model of its own per test."""
    return f"shelflab-search-test-{uuid.uuid4().hex[:8]}"


def publish(uri: str, registered: str, b: Built, sample_all, tmp: Path, **tags: str) -> str:
    """evaluate@'s MLflow side for one built pipeline; returns the version."""
    from shelflab.registry.pipeline_model import register_pipeline
    from shelflab.registry.tracking import log_evaluation

    tmp.mkdir(parents=True, exist_ok=True)
    per_query = tmp / f"{b.key}.parquet"
    b.report.per_query_table().write_parquet(per_query)
    all_tags = {**TAGS, "model_family": b.family, **tags}
    run_id = log_evaluation(
        tracking_uri=uri,
        experiment=f"search-{all_tags['dataset']}",
        model_name=b.key,
        params={"model": b.params},
        metrics=b.report.mlflow_metrics,
        tags=all_tags,
        artifacts=[per_query],
        curve_steps=b.report.curve_steps(),
    )
    return register_pipeline(
        tracking_uri=uri,
        run_id=run_id,
        registered=registered,
        model_key=b.key,
        model=type("M", (), {"family": b.family, "params": b.params})(),
        model_dir=b.model_dir,
        index_dir=b.index_dir,
        summary=b.report.summary,
        per_query=b.report.per_query_table(),
        queries=sample_all["queries"],
        example=sample_all["queries"].head(2),
        data_info={"dataset": all_tags["dataset"]},
        metrics=EVAL_CFG["metrics"],
        tags=all_tags,
    )


@pytest.fixture
def publisher(store, sample_all, tmp_path):
    """publisher(name, key, **tags) -> version, into the session's sqlite store."""

    def pub(registered: str, b: Built, uri: str | None = None, **tags: str) -> str:
        return publish(uri or store, registered, b, sample_all, tmp_path / uuid.uuid4().hex, **tags)

    return pub


@pytest.fixture
def promote_cfg():
    """promote_cfg(**overrides) -> a params.yaml `promote` section."""
    import copy

    def make(**over):
        return {**copy.deepcopy(PROMOTE_CFG), **over}

    return make


PROMOTE_CFG = {
    "split": "test",
    "metric": "ndcg@10",
    "alpha": 0.05,
    "min_delta": 0.0,
    "significance": {"method": "randomization", "n_resamples": 2000, "seed": 0},
    "guardrails": {"recall@100": {"max_drop": 0.05}, "latency_p95_ms": {"max": 5000}},
}
