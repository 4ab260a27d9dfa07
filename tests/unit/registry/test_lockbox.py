"""The lockbox: queries set aside at split time, opened deliberately by `shelflab lockbox`
(real MLflow sqlite store, the real bm25 pipeline on the shipped sample)."""

from __future__ import annotations

import json

import mlflow
import polars as pl
import pytest
import yaml

from shelflab.cli.main import main
from shelflab.evaluation.harness import counts_line, evaluate
from shelflab.protocols.lockbox import LOCKBOX, set_aside, set_aside_per_params


def test_set_aside_takes_a_seeded_share_of_test_only():
    split = ["train"] * 8 + ["valid"] * 4 + ["test"] * 8
    splits = pl.DataFrame({"query_id": [f"q{i}" for i in range(20)], "split": split})
    assert set_aside(splits, 0.0, 1).equals(splits)
    boxed = set_aside(splits, 0.25, 1)
    moved = boxed.filter(pl.col("split") == LOCKBOX)["query_id"].to_list()
    assert len(moved) == 2 and set(moved) <= {f"q{i}" for i in range(12, 20)}
    assert boxed.filter(pl.col("split") != LOCKBOX).equals(
        splits.filter(~pl.col("query_id").is_in(moved))
    )
    assert set_aside(splits, 0.25, 1).equals(boxed)
    assert not set_aside(splits, 0.25, 2).equals(boxed)  # another seed, another sample
    with pytest.raises(ValueError, match="lockbox fraction"):
        set_aside(splits, 1.0, 1)
    # from a split section: the schema's defaults (no lockbox) where a key is absent
    assert set_aside_per_params(splits, {"fractions": [0.4, 0.2, 0.4], "seed": 3}).equals(splits)
    per_params = set_aside_per_params(splits, {"lockbox_fraction": 0.25, "lockbox_seed": 1})
    assert per_params.equals(boxed)
    assert set_aside_per_params(splits, {"lockbox_fraction": 0.25}).equals(
        set_aside(splits, 0.25, 0)
    )


@pytest.fixture
def lockbox_repo(repo_root, tmp_path, monkeypatch, store, sample_all):
    """A track folder whose split table has 40 sample queries in the lockbox."""
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["mlflow"]["tracking_uri"] = store
    params["leaderboard"]["metrics"] = ["ndcg@10", "recall@100"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    processed = tmp_path / "data" / "processed"
    processed.mkdir(parents=True)
    queries = sample_all["queries"].sort("query_id")
    queries.select("query_id", pl.col("raw_text").alias("text")).write_parquet(
        processed / "queries.parquet"
    )
    sample_all["qrels"].write_parquet(processed / "qrels.parquet")
    boxed = queries["query_id"].head(40)
    queries.select(
        "query_id",
        pl.when(pl.col("query_id").is_in(boxed.implode())).then(pl.lit(LOCKBOX))
        .otherwise(pl.lit("test")).alias("split"),
    ).write_parquet(processed / "splits.parquet")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path, boxed


def test_opening_the_lockbox_scores_it_beside_test_and_logs_who_and_when(
    lockbox_repo, name, built, publisher, sample_all, store, capsys
):
    _, boxed = lockbox_repo
    v = publisher(name, built["bm25"])
    assert main(["lockbox", "--model", f"models:/{name}/{v}", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["metric"]: r for r in out["rows"]}
    # independently: the harness on the same pipeline's run for the 40 boxed queries
    own = built["bm25"].report.runs["test"].filter(pl.col("query_id").is_in(boxed.implode()))
    qrels = sample_all["qrels"].filter(pl.col("query_id").is_in(boxed.implode()))
    expected = evaluate(qrels, own, ["ndcg@10", "recall@100"])
    want = expected.means
    assert rows["ndcg@10"]["lockbox"] == pytest.approx(want["ndcg@10"])
    assert rows["recall@100"]["lockbox"] == pytest.approx(want["recall@100"])
    # beside the test figure the version was registered with (all 500 sample queries)
    assert rows["ndcg@10"]["test"] == pytest.approx(
        built["bm25"].report.summary["test"]["ndcg@10"]["mean"]
    )
    assert out["queries"] == expected.counts() and out["earlier_openings"] == 0
    client = mlflow.tracking.MlflowClient(store)
    run = client.get_run(out["run_id"])
    assert run.data.tags["opened_by"] == out["opened_by"] and run.data.tags["opening"] == "1"
    assert run.data.metrics["lockbox_ndcg_at_10"] == pytest.approx(want["ndcg@10"])
    tags = client.get_model_version(name, v).tags
    assert float(tags["shelflab.lockbox_ndcg_at_10"]) == pytest.approx(want["ndcg@10"], abs=1e-6)
    # a second opening is counted, and the table says so
    assert main(["lockbox", "--model", f"models:/{name}/{v}"]) == 0
    table = capsys.readouterr().out
    assert "opened 1 time(s) before" in table and "ndcg@10" in table
    assert table.splitlines()[-1] == counts_line(expected.counts())
    mlflow.set_tracking_uri("")


def test_no_lockbox_is_a_clear_error(lockbox_repo, capsys):
    root, _ = lockbox_repo
    splits = pl.read_parquet(root / "data/processed/splits.parquet")
    splits.with_columns(pl.lit("test").alias("split")).write_parquet(
        root / "data/processed/splits.parquet"
    )
    assert main(["lockbox", "--model", "models:/x/1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no lockbox queries: set split.lockbox_fraction" in err[0]
