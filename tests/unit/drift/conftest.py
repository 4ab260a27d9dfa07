"""Real Amazon 2018 reviews for the drift tests (skipped when the shared data is absent).

One session root holds a minimal params.yaml with the `drift:` section the tests use, the
pipeline's default-reference tables (tracks/reviews/data/processed) and the embedding cache
(.cache/shelflab): the library fixtures and the CLI runs share it, so each review text is
embedded once per session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

AMAZON = "amazon-2018-5core"
BEAUTY = "All_Beauty_5.json.gz"
GIFT = "Gift_Cards_5.json.gz"
TIME_QUANTILE = 0.8  # reference and hold-out both come from before this time cut
SEED = 0
# small enough for 2 busy cores: 400 reviews a side are embedded (the default is 2000)
DRIFT_CFG: dict[str, Any] = {"embeddings": {"max_rows": 400, "seed": SEED}}


@pytest.fixture(scope="session")
def amazon_dir(data_dir: Path) -> Path:
    path = data_dir / AMAZON
    for name in (BEAUTY, GIFT):
        if not (path / name).is_file():
            pytest.skip(f"real review data not found: {path / name}")
    return path


@pytest.fixture(scope="session")
def gift_path(amazon_dir: Path) -> Path:
    return amazon_dir / GIFT


def _load(path: Path) -> pl.DataFrame:
    from shelflab.data_io.amazon import load_reviews
    from shelflab.drift.features import distinct_reviews
    from shelflab.quarantine import Quarantine

    return distinct_reviews(load_reviews(path, quarantine=Quarantine()))


@pytest.fixture(scope="session")
def beauty(amazon_dir: Path) -> pl.DataFrame:
    return _load(amazon_dir / BEAUTY)


@pytest.fixture(scope="session")
def gift(amazon_dir: Path) -> pl.DataFrame:
    return _load(amazon_dir / GIFT)


@pytest.fixture(scope="session")
def beauty_split(beauty: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(reference, hold-out): a seeded random half of the (distinct) All_Beauty reviews
    before the time cut, and the other half."""
    cut = beauty["timestamp"].quantile(TIME_QUANTILE)
    early = beauty.filter(pl.col("timestamp") <= cut)
    reference = early.sample(fraction=0.5, seed=SEED)
    holdout = early.join(reference.select("review_id"), on="review_id", how="anti")
    return reference, holdout


@pytest.fixture(scope="session")
def drift_cfg() -> dict[str, Any]:
    return DRIFT_CFG


@pytest.fixture(scope="session")
def drift_root(tmp_path_factory, beauty_split, drift_cfg) -> Path:
    """A repo root for the CLI: params.yaml with the tests' drift section, and the reviews
    track's processed tables where the reference is the "train" split."""
    root = tmp_path_factory.mktemp("drift-root")
    repo = Path(__file__).resolve().parents[3]
    track_params = yaml.safe_load((repo / "tracks" / "reviews" / "params.yaml").read_text())
    params = track_params | {"drift": drift_cfg}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    processed = root / "tracks" / "reviews" / "data" / "processed"
    processed.mkdir(parents=True)
    (root / "tracks" / "reviews" / "params.yaml").write_text(yaml.safe_dump(params))
    reference, holdout = beauty_split
    reviews = pl.concat([reference, holdout]).with_columns(pl.col("review_id").alias("query_id"))
    reviews.write_parquet(processed / "reviews.parquet")
    splits = pl.concat(
        [
            reference.select(pl.col("review_id").alias("query_id"), pl.lit("train").alias("split")),
            holdout.select(pl.col("review_id").alias("query_id"), pl.lit("test").alias("split")),
        ]
    )
    splits.write_parquet(processed / "splits.parquet")
    return root


@pytest.fixture(scope="session")
def cache_dir(drift_root: Path) -> Path:
    """Where the CLI run from `drift_root` caches embeddings (Layout(root).cache_dir)."""
    return drift_root / ".cache" / "shelflab"


@pytest.fixture(scope="session")
def holdout_result(beauty_split, drift_cfg, cache_dir):
    from shelflab.drift.report import run_drift

    reference, holdout = beauty_split
    return run_drift(reference, holdout, drift_cfg, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def gift_result(beauty_split, gift, drift_cfg, cache_dir):
    from shelflab.drift.report import run_drift

    reference, _ = beauty_split
    return run_drift(reference, gift, drift_cfg, cache_dir=cache_dir)
