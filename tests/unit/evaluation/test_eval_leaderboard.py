"""build_leaderboard / format_leaderboard (shelflab.evaluation.leaderboard)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from shelflab.errors import ConfigError
from shelflab.evaluation.leaderboard import build_leaderboard, format_leaderboard, with_costs
from shelflab.evaluation.significance import bootstrap_ci, paired_test

QUERIES = [f"q{i:03d}" for i in range(60)]


def _per_query(seed: int, shift: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    base = np.linspace(0.1, 0.8, len(QUERIES))
    return pl.DataFrame(
        {
            "query_id": QUERIES,
            "ndcg@10": np.clip(base + shift + rng.normal(0, 0.05, len(QUERIES)), 0, 1),
            "mrr": np.clip(base + rng.normal(0, 0.05, len(QUERIES)), 0, 1),
        }
    )


@pytest.fixture
def models() -> dict[str, pl.DataFrame]:
    # rows of "dense" are shuffled: the leaderboard must align on query_id
    return {
        "bm25": _per_query(0, 0.0),
        "dense": _per_query(1, 0.1).sample(fraction=1.0, shuffle=True, seed=0),
        "random": _per_query(2, -0.3),
    }


def test_rows_sorted_best_first_with_ci_and_test(models):
    board = build_leaderboard(models, ["ndcg@10", "mrr"], baseline="bm25", n_resamples=500)
    assert board["model"].to_list() == ["dense", "bm25", "random"]
    assert board.columns == [
        "model",
        "n",
        "ndcg@10",
        "ndcg@10_ci_low",
        "ndcg@10_ci_high",
        "mrr",
        "mrr_ci_low",
        "mrr_ci_high",
        "baseline",
        "delta_on",
        "delta",
        "delta_ci_low",
        "delta_ci_high",
        "p_value",
    ]
    rows = {r["model"]: r for r in board.iter_rows(named=True)}
    assert rows["bm25"]["p_value"] is None and rows["bm25"]["delta"] == 0.0
    dense = rows["dense"]
    expected = paired_test(models["dense"], models["bm25"], metric="ndcg@10", n_resamples=500)
    assert dense["delta"] == pytest.approx(expected.delta, abs=1e-15)
    assert dense["p_value"] == expected.p_value
    assert dense["delta"] == pytest.approx(dense["ndcg@10"] - rows["bm25"]["ndcg@10"], abs=1e-12)
    assert dense["p_value"] < 0.01 and rows["random"]["p_value"] < 0.01
    mean, low, high = bootstrap_ci(models["bm25"]["mrr"], n_resamples=500)
    assert (rows["bm25"]["mrr"], rows["bm25"]["mrr_ci_low"], rows["bm25"]["mrr_ci_high"]) == (
        mean,
        low,
        high,
    )
    assert board["n"].to_list() == [60, 60, 60]


def test_sort_by_other_metric_and_no_baseline(models):
    board = build_leaderboard(models, ["ndcg@10", "mrr"], sort_by="mrr", n_resamples=100)
    assert "p_value" not in board.columns
    assert board["mrr"].is_sorted(descending=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": "bm26"}, r"unknown baseline 'bm26' \(expected one of: bm25, dense, random\)"),
        ({"sort_by": "map"}, "sort_by 'map' is not one of the metrics"),
        ({"metrics": ["ndcg@10", "recall@100"]}, "model 'bm25' has no column.*recall@100"),
        ({"metrics": []}, "no metric"),
    ],
)
def test_errors(models, kwargs, message):
    args = {"metrics": ["ndcg@10", "mrr"]} | kwargs
    with pytest.raises(ConfigError, match=message):
        build_leaderboard(models, **args)


def test_no_models():
    with pytest.raises(ConfigError, match="no model"):
        build_leaderboard({}, ["mrr"])


def test_formats(models):
    board = build_leaderboard(models, ["ndcg@10", "mrr"], baseline="bm25", n_resamples=200)
    table = format_leaderboard(board)
    lines = table.splitlines()
    assert lines[0].split() == [
        "model",
        "n",
        "ndcg@10",
        "mrr",
        "delta",
        "ndcg@10",
        "vs",
        "bm25",
        "p",
    ]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].startswith("dense ")
    assert "baseline" in lines[3]
    ndcg = board.filter(pl.col("model") == "dense")["ndcg@10"].item()
    assert f"{ndcg:.4f} [" in lines[2]
    assert len({len(line) for line in lines}) == 1  # aligned

    md = format_leaderboard(board, "markdown").splitlines()
    assert md[0] == "| model | n | ndcg@10 | mrr | delta ndcg@10 vs bm25 | p |"
    assert md[1] == "| --- | ---: | ---: | ---: | ---: | ---: |"
    assert md[2].startswith("| dense | 60 | ")

    data = json.loads(format_leaderboard(board, "json"))
    assert [r["model"] for r in data] == ["dense", "bm25", "random"]
    assert data[1]["p_value"] is None
    assert (data[0]["baseline"], data[0]["delta_on"]) == ("bm25", "ndcg@10")
    assert data[0]["ndcg@10"] == ndcg

    with pytest.raises(ConfigError, match="unknown format 'html'"):
        format_leaderboard(board, "html")


def test_latency_columns(models):
    board = build_leaderboard(models, ["ndcg@10"], baseline="bm25")
    names = board["model"].to_list()
    with_lat = with_costs(board, {names[0]: {"p50_ms": 1.234, "p95_ms": 9.87}})
    assert (
        with_lat["p50_ms"].to_list()[0] == 1.234
        and with_lat["p50_ms"].null_count() == len(names) - 1
    )
    md = format_leaderboard(with_lat, "markdown").splitlines()
    assert md[0].endswith("| p50 ms | p95 ms |")
    assert md[2].endswith("| 1.2 | 9.9 |") and md[3].endswith("|  |  |")
    assert "p50" not in format_leaderboard(board, "markdown")  # only when measured


def test_build_time_columns_show_when_recorded(models):
    board = build_leaderboard(models, ["ndcg@10"], baseline="bm25")
    names = board["model"].to_list()
    costs = {n: {"p50_ms": 2.0, "p95_ms": 3.0, "train_s": 12.34, "index_s": 0.5} for n in names}
    md = format_leaderboard(with_costs(board, costs), "markdown").splitlines()
    assert md[0].endswith("| p50 ms | p95 ms | train s | index s |")
    assert md[2].endswith("| 2.0 | 3.0 | 12.3 | 0.5 |")


def test_test_looks_column_is_a_count(models):
    board = build_leaderboard(models, ["ndcg@10"], baseline="bm25")
    names = board["model"].to_list()
    costs = {n: {"p50_ms": 2.0, "test_looks": float(i + 1)} for i, n in enumerate(names)}
    md = format_leaderboard(with_costs(board, costs), "markdown").splitlines()
    assert md[0].endswith("| p50 ms | test looks |")
    assert md[2].endswith("| 2.0 | 1 |") and md[3].endswith("| 2.0 | 2 |")


def test_query_counts_show_only_when_a_model_missed_queries(models):
    board = build_leaderboard(models, ["ndcg@10"], baseline="bm25")
    names = board["model"].to_list()
    clean = {n: {"queries_missing_from_run": 0.0, "queries_run_ignored": 0.0} for n in names}
    md = format_leaderboard(with_costs(board, clean), "markdown")
    assert "missing" not in md
    costs = {**clean, names[1]: {"queries_missing_from_run": 7.0, "queries_run_ignored": 0.0}}
    md = format_leaderboard(with_costs(board, costs), "markdown").splitlines()
    assert md[0].endswith("| queries missing from run |") and md[3].endswith("| 7 |")
    rows = json.loads(format_leaderboard(with_costs(board, costs), "json"))
    assert rows[1]["queries_missing_from_run"] == 7.0 and rows[0]["queries_run_ignored"] == 0.0
