"""Inputs of a drift report on the review track: review files of any supported format, the
pipeline's training-period reviews (the default reference), a period of the pipeline's own
reviews as a batch, and the model side (a built model on the batch's review -> item queries).
Shared by `shelflab drift` and the drift@<batch> stage."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.errors import InputError
from shelflab.layout import Layout
from shelflab.reviews.track import period_reviews

TRACK = Path("tracks") / "reviews"
PROCESSED = TRACK / "data" / "processed"
TRAIN_SPLIT = "train"


def track_root(root: Path) -> Path:
    """The review track's folder: `root` itself when run inside it, else root/tracks/reviews."""
    nested = root / TRACK
    return nested if (nested / "params.yaml").is_file() else root


def read_reviews_file(path: str | Path) -> pl.DataFrame:
    """Reviews from Parquet (already in the review schema) or any format load_reviews reads;
    quarantined lines are counted on stderr."""
    from shelflab.data_io.amazon import load_reviews
    from shelflab.quarantine import Quarantine

    p = Path(path)
    if p.suffix.lower() == ".parquet":
        if not p.is_file():
            raise InputError("file not found", path=p, expected="a Parquet file of reviews")
        try:
            return pl.read_parquet(p)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise InputError(f"cannot read Parquet ({exc})", path=p) from exc
    quarantine = Quarantine()
    reviews = load_reviews(p, fmt="auto", quarantine=quarantine)
    counts = quarantine.counts()
    if counts:
        detail = ", ".join(f"{reason}: {n}" for reason, n in counts.items())
        print(f"{p}: {sum(counts.values())} line(s) quarantined ({detail})", file=sys.stderr)
    return reviews


def pipeline_period(folder: Path, split: str, what: str = "pipeline reviews") -> pl.DataFrame:
    """The reviews of one period of the pipeline's split (folder: data/processed)."""
    reviews_path, splits_path = folder / "reviews.parquet", folder / "splits.parquet"
    for path in (reviews_path, splits_path):
        if not path.is_file():
            raise InputError(
                f"{what}: not found (build the reviews pipeline first, or pass --reference)",
                path=path,
                expected="the processed reviews and their splits",
            )
    splits = pl.read_parquet(splits_path, columns=["query_id", "split"])
    return period_reviews(pl.read_parquet(reviews_path), splits, split)


def default_reference(root: Path) -> tuple[pl.DataFrame, str]:
    """The pipeline's training-period reviews -> (reviews, label for messages)."""
    folder = Layout(track_root(root)).processed
    reviews = pipeline_period(folder, TRAIN_SPLIT, "no default reference")
    return reviews, f"{folder / 'reviews.parquet'} ({TRAIN_SPLIT})"


def load_batch(path: Path, split: str | None = None) -> pl.DataFrame:
    """A batch: a review file, or with `split` that period of the pipeline's reviews table
    (`path` is then its reviews.parquet)."""
    if split:
        return pipeline_period(path.parent, split)
    return read_reviews_file(path)


def champion_model(root: Path) -> str:
    """The model key the track's promote stage left as champion (metrics/promotion.json)."""
    import json

    path = root / "metrics" / "promotion.json"
    if not path.is_file():
        raise InputError("not found", path=path, expected="the promote stage's output")
    return json.loads(path.read_text())["champion_model"]


def model_side(root: Path, params: dict[str, Any], key: str, batch: pl.DataFrame) -> dict[str, Any]:
    """The built model `key` on the batch's queries vs its test-split per-query metric."""
    from shelflab.drift.model_side import batch_task, compare_with_test, per_query_on_batch
    from shelflab.pipeline.built import open_built_model
    from shelflab.textnorm import normalize_frame

    layout = Layout(root)
    cfg, data = params["drift"], params["data"]
    metric = cfg.get("metric", "ndcg@10")
    catalog = pl.read_parquet(layout.enriched / "items.parquet", columns=["item_id"])["item_id"]
    queries, qrels, counts = batch_task(
        batch,
        catalog,
        data.get("query_fields", ["summary", "body"]),
        data.get("query_separator", ". "),
    )
    out: dict[str, Any] = {"model": key, **counts}
    if queries.height == 0:
        out["note"] = "no batch review is of an item in the model's catalog: nothing to score"
        return out
    model = open_built_model(layout, key)
    try:
        batch_pq = per_query_on_batch(
            model,
            normalize_frame(queries, params["enrich"]),
            qrels,
            [metric],
            params["evaluate"]["k"],
            params["evaluate"]["relevance_threshold"],
        )
    finally:
        model.close()
    test = pl.read_parquet(layout.per_query(key)).filter(pl.col("split") == "test")
    sig = params["leaderboard"].get("significance", {})
    out["comparison"] = compare_with_test(
        batch_pq,
        test.select("query_id", metric),
        metric,
        n_resamples=sig.get("n_resamples", 10_000),
        seed=sig.get("seed", 0),
    )
    return out
