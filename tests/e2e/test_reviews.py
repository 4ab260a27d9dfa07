"""Review-to-item track (tracks/reviews) end to end, from tests/e2e/params/reviews.yaml: a time
split with quarantined duplicate reviews, bm25 and dense evaluated and the better one promoted,
the drift stages against the training-period reviews, and `shelflab drift` from the CLI."""

import json

import polars as pl
import pytest

pytestmark = [pytest.mark.slow]

MODELS = {"bm25", "dense"}
DRIFT_BATCHES = ("gift_cards", "test_period")


@pytest.fixture(scope="module")
def reviews(reproduce):
    return reproduce("tracks/reviews", "reviews.yaml")


def test_review_track_builds_with_a_time_split_and_quarantine(reviews):
    track = reviews.dir
    models = reviews.models()
    assert set(models) == MODELS
    expected = {"code", "ingest", "split", "enrich", "leaderboard", "promote"}
    expected |= {f"{s}@{m}" for s in ("tune", "train", "index", "evaluate") for m in models}
    expected |= {f"drift@{batch}" for batch in DRIFT_BATCHES}
    assert expected <= reviews.first_run
    # this track only: the search pipeline (the root dvc.yaml) did not run
    assert not (reviews.root / "dvc.lock").exists()
    ingest = reviews.json("metrics", "ingest.json")
    assert ingest["quarantined_by_reason"]["duplicate review"] > 0  # the real file repeats reviews
    quarantine = pl.read_parquet(track / "data" / "processed" / "quarantine.parquet")
    assert quarantine.height == ingest["quarantined"]
    # no later review in an earlier period
    queries = pl.read_parquet(track / "data" / "processed" / "queries.parquet")
    splits = pl.read_parquet(track / "data" / "processed" / "splits.parquet")
    span = (
        queries.join(splits, on="query_id")
        .group_by("split")
        .agg(pl.col("timestamp").min().alias("lo"), pl.col("timestamp").max().alias("hi"))
    )
    lo_hi = {s: (lo, hi) for s, lo, hi in span.iter_rows()}
    assert lo_hi["train"][1] < lo_hi["valid"][0] and lo_hi["valid"][1] < lo_hi["test"][0]
    items = pl.read_parquet(track / "data" / "enriched" / "items.parquet")
    assert items["text"].str.contains("[review keywords]", literal=True).sum() > 0
    for name in models:
        summary = reviews.json("metrics", "models", f"{name}.json")
        for split in ("valid", "test"):
            for metric in ("recall@1", "recall@10", "recall@100", "mrr", "ndcg@10"):
                assert 0 <= summary[split][metric]["mean"] <= 1
    promotion = reviews.json("metrics", "promotion.json")
    assert promotion["champion_model"] in models


def test_second_repro_is_noop(reviews):
    assert reviews.repro() == set()
    assert reviews.up_to_date()


def test_review_drift_stages_and_cli(reviews, tmp_path):
    other = reviews.json("reports", "drift", "gift_cards", "summary.json")
    same = reviews.json("reports", "drift", "test_period", "summary.json")
    assert other["dataset_drift"] and other["embeddings"]["drifted"]
    assert other["model"]["queries"] == 0 and "note" in other["model"]  # no Beauty item in it
    assert same["model"]["queries"] > 0
    assert same["model"]["comparison"]["method"] == "paired"  # the test period is the test split
    assert same["embeddings"]["score"] != other["embeddings"]["score"]
    for batch in DRIFT_BATCHES:
        assert (reviews.dir / "reports" / "drift" / batch / "report.html").stat().st_size > 0
    # the CLI: default reference = the pipeline's training-period reviews
    batch = reviews.root / "data" / "sample" / "amazon" / "Gift_Cards_5.sample.json.gz"
    res = reviews.sh("shelflab", "drift", "--batch", batch, "--out", tmp_path / "d",
                     "--format", "json", "--fail-on-drift", check=False)  # fmt: skip
    assert res.returncode == 3, res.stderr
    assert json.loads(res.stdout)["dataset_drift"] is True
    assert (tmp_path / "d" / "report.html").is_file()
    # the model side from the CLI: the champion on every review of the sample vs its test split
    res = reviews.sh("shelflab", "drift", "--batch", "data/processed/reviews.parquet",
                     "--model", "champion", "--out", tmp_path / "m",
                     "--format", "json")  # fmt: skip
    model = json.loads(res.stdout)["model"]
    assert model["model"] == reviews.json("metrics", "promotion.json")["champion_model"]
    assert model["comparison"]["method"] == "two-sample permutation"
    assert model["comparison"]["batch"]["n"] == model["queries"] > 0
