"""Query splits: fractions, determinism, no text leakage, stability as the set grows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from shelflab.data_io.home_depot import load_home_depot_dir
from shelflab.errors import ConfigError, InputError
from shelflab.protocols.random_split import split_counts, split_queries
from shelflab.quarantine import Quarantine
from shelflab.textnorm import normalize_series

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"


@pytest.fixture(scope="module")
def full_queries(data_dir):
    d = data_dir / "home-depot-search-relevance"
    return load_home_depot_dir(d, quarantine=Quarantine()).queries


@pytest.fixture(scope="module")
def sample_queries():
    return load_home_depot_dir(SAMPLE, quarantine=Quarantine()).queries


def _assert_no_leak(queries: pl.DataFrame, splits: pl.DataFrame) -> None:
    df = queries.join(splits, on="query_id").with_columns(
        pl.col("text").map_batches(normalize_series).alias("key")
    )
    per_key = df.group_by("key").agg(pl.col("split").n_unique().alias("n"))
    assert per_key["n"].max() == 1


def test_fractions_on_real_data(full_queries):
    splits = split_queries(full_queries)
    assert splits.height == full_queries.height == 9_436
    counts = split_counts(splits)
    n = splits.height
    assert abs(counts["train"] / n - 0.8) < 0.015
    assert abs(counts["valid"] / n - 0.1) < 0.015
    assert abs(counts["test"] / n - 0.1) < 0.015
    _assert_no_leak(full_queries, splits)


def test_real_near_duplicates_share_a_split(full_queries):
    splits = split_queries(full_queries)
    df = full_queries.join(splits, on="query_id").with_columns(
        pl.col("text").map_batches(normalize_series).alias("key")
    )
    dup_keys = df.filter(pl.col("key").is_duplicated())
    assert dup_keys.height > 0  # the real terms do hold case/spacing/unit variants
    assert dup_keys.group_by("key").agg(pl.col("split").n_unique())["split"].max() == 1


def test_fractions_on_sample(sample_queries):
    counts = split_counts(split_queries(sample_queries))
    assert sum(counts.values()) == 500
    assert abs(counts["train"] / 500 - 0.8) < 0.06
    assert counts["valid"] > 25 and counts["test"] > 25


def test_deterministic_and_seeded(sample_queries):
    a = split_queries(sample_queries, seed=42)
    b = split_queries(sample_queries, seed=42)
    c = split_queries(sample_queries, seed=7)
    assert a.equals(b)
    assert not a.equals(c)
    assert a["query_id"].to_list() == sample_queries["query_id"].to_list()  # input order


def test_same_normalised_text_same_split():
    q = pl.DataFrame(
        {
            "query_id": [f"q{i}" for i in range(8)],
            "text": ["2x4 Stud", "2 X 4 stud", "2 x 4 stud", "30in range", '30" Range',
                     "30 in. range", "ceiling fan", "Ceiling  Fan "],
        }
    )  # fmt: skip
    for seed in range(20):
        s = dict(split_queries(q, seed=seed).iter_rows())
        assert s["q0"] == s["q1"] == s["q2"]
        assert s["q3"] == s["q4"] == s["q5"]
        assert s["q6"] == s["q7"]


def test_stable_when_the_query_set_grows(full_queries, sample_queries):
    small = split_queries(sample_queries)
    big = split_queries(full_queries)
    joined = small.join(big, on="query_id", suffix="_big")
    assert joined.height == 500
    assert (joined["split"] == joined["split_big"]).all()


def test_custom_names_and_zero_fraction(sample_queries):
    s = split_queries(sample_queries, (0.5, 0.5, 0.0), names=("a", "b", "c"))
    assert set(s["split"].unique().to_list()) == {"a", "b"}


@pytest.mark.parametrize(
    ("fractions", "match"),
    [((0.8, 0.1), "do not match"), ((0.8, 0.3, -0.1), r"in \[0, 1\]"),
     ((0.8, 0.1, 0.2), "sum to 1")],
)  # fmt: skip
def test_bad_fractions(sample_queries, fractions, match):
    with pytest.raises(ConfigError, match=match):
        split_queries(sample_queries, fractions)


def test_bad_queries():
    with pytest.raises(InputError, match="duplicate query_id 'a'"):
        split_queries(pl.DataFrame({"query_id": ["a", "a"], "text": ["x", "y"]}))
    with pytest.raises(InputError, match="missing column"):
        split_queries(pl.DataFrame({"query_id": ["a"]}))
    with pytest.raises(InputError, match="row 2"):
        split_queries(pl.DataFrame({"query_id": ["a", "b"], "text": ["x", None]}))
