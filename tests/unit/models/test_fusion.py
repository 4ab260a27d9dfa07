"""Fusion on hand-worked examples."""

from __future__ import annotations

import polars as pl
import pytest

from shelflab.contract import validate_run
from shelflab.errors import ConfigError
from shelflab.models.fusion import fuse, normalize, rrf, weighted


def run(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema=["query_id", "item_id", "score"], orient="row")
    return validate_run(df)  # adds ranks by score


def scores(fused: pl.DataFrame, q: str = "q") -> dict[str, float]:
    sub = fused.filter(pl.col("query_id") == q)
    return dict(zip(sub["item_id"], sub["score"], strict=True))


def order(fused: pl.DataFrame, q: str = "q") -> list[str]:
    return fused.filter(pl.col("query_id") == q).sort("rank")["item_id"].to_list()


A = run([("q", "a", 10.0), ("q", "b", 8.0), ("q", "c", 2.0)])  # ranks a1 b2 c3
B = run([("q", "b", 0.9), ("q", "d", 0.5), ("q", "a", 0.1)])  # ranks b1 d2 a3


def test_rrf_hand_worked():
    fused = rrf([A, B], rrf_k=60)
    s = scores(fused)
    assert s["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert s["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert s["c"] == pytest.approx(1 / 63)
    assert s["d"] == pytest.approx(1 / 62)
    assert order(fused) == ["b", "a", "d", "c"]
    assert fused["rank"].to_list() == [1, 2, 3, 4]


def test_rrf_weights_and_k():
    fused = rrf([A, B], rrf_k=0, weights=[3.0, 1.0], k=2)
    # a: 3/1 + 1/3 ; b: 3/2 + 1/1 ; c: 3/3 ; d: 1/2
    assert scores(fused) == pytest.approx({"a": 3 + 1 / 3, "b": 2.5})
    assert order(fused) == ["a", "b"]


def test_minmax_normalize_and_constant_run():
    n = normalize(A, "minmax")
    assert dict(zip(n["item_id"], n["score"], strict=True)) == pytest.approx(
        {"a": 1.0, "b": 0.75, "c": 0.0}
    )
    const = normalize(run([("q", "x", 3.0), ("q", "y", 3.0)]), "minmax")
    assert const["score"].to_list() == [1.0, 1.0]


def test_zscore_normalize():
    n = normalize(A, "zscore")  # mean 20/3, population std sqrt(104/9)
    mean, std = 20 / 3, (104 / 9) ** 0.5
    got = dict(zip(n["item_id"], n["score"], strict=True))
    assert got == pytest.approx(
        {"a": (10 - mean) / std, "b": (8 - mean) / std, "c": (2 - mean) / std}
    )
    assert normalize(run([("q", "x", 5.0)]), "zscore")["score"].to_list() == [0.0]


def test_weighted_minmax_hand_worked():
    # A -> a 1, b .75, c 0 ; B (range .8) -> b 1, d .5, a 0 ; missing = that run's min (0)
    fused = weighted([A, B], weights=[0.5, 0.5], norm="minmax")
    assert scores(fused) == pytest.approx({"a": 0.5, "b": 0.875, "c": 0.0, "d": 0.25})
    assert order(fused) == ["b", "a", "d", "c"]


def test_weighted_zscore_missing_gets_run_minimum():
    x = run([("q", "a", 3.0), ("q", "b", 1.0)])  # z: a +1, b -1
    y = run([("q", "c", 4.0), ("q", "a", 2.0)])  # z: c +1, a -1
    fused = weighted([x, y], norm="zscore")
    # a: 1 + -1 = 0 ; b: -1 + min(y)=-1 -> -2 ; c: min(x)=-1 + 1 = 0
    assert scores(fused) == pytest.approx({"a": 0.0, "b": -2.0, "c": 0.0})
    # tie a/c broken by item_id descending (trec_eval order)
    assert order(fused) == ["c", "a", "b"]


def test_query_missing_from_one_run_adds_zero():
    x = run([("q", "a", 2.0), ("q", "b", 1.0), ("p", "z", 7.0)])
    y = run([("q", "b", 5.0)])
    fused = weighted([x, y], norm="minmax")
    assert scores(fused, "p") == {"z": 1.0}
    assert scores(fused, "q") == pytest.approx({"a": 1.0, "b": 1.0})
    validate_run(fused)


def test_fuse_dispatch_and_errors():
    assert fuse([A, B], "rrf", k=1)["item_id"].to_list() == ["b"]
    assert fuse([A, B], "weighted", k=1)["item_id"].to_list() == ["b"]
    with pytest.raises(ConfigError):
        fuse([A, B], "borda")
    with pytest.raises(ConfigError):
        rrf([A, B], weights=[1.0])
    with pytest.raises(ConfigError):
        normalize(A, "l2")


@pytest.mark.parametrize("seed", range(6))
def test_a_single_query_is_fused_in_python_exactly_as_polars_fuses_it(seed):
    """`fuse` serves one query's runs in Python (no polars steps); the result must equal the
    polars implementation bit for bit: scores, tie order and ranks, with heavy ties, a run
    missing, items in only one run, three runs and unequal weights."""
    import numpy as np

    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(1 + seed % 3):
        items = rng.choice(60, size=int(rng.integers(0, 40)), replace=False)
        rows = [("q", f"i{i:02d}", float(rng.integers(0, 6)) / 4) for i in items]
        runs.append(run(rows) if rows else run([]).cast({"rank": pl.Int64}))
    w = [float(x) for x in rng.random(len(runs))] if seed % 2 else None
    if all(r.height == 0 for r in runs):
        runs[0] = run([("q", "a", 1.0)])
    for k in (None, 5):
        assert fuse(runs, "rrf", k=k, rrf_k=7.5, weights=w).equals(
            rrf(runs, rrf_k=7.5, weights=w, k=k)
        )
        assert fuse(runs, "weighted", k=k, weights=w).equals(weighted(runs, weights=w, k=k))


def test_add_rank_python_and_polars_orders_agree():
    """One small query is ranked by Python's sort, several by polars: same order and ranks,
    ties (-0.0 == 0.0 included) broken by item_id descending."""
    import numpy as np

    from shelflab.contract import add_rank

    rng = np.random.default_rng(3)
    n = 300
    one = pl.DataFrame(
        {
            "query_id": ["q"] * n,
            "item_id": [f"i{j}" for j in rng.permutation(n)],
            "score": [float(s) for s in rng.integers(-2, 3, n) * 0.5] + [],
        }
    ).with_columns(pl.when(pl.int_range(pl.len()) % 7 == 0).then(-0.0).otherwise("score")
                   .alias("score"))  # fmt: skip
    other = one.with_columns(pl.lit("r").alias("query_id"))
    both = add_rank(pl.concat([one, other]))  # polars: two queries
    assert add_rank(one).equals(both.filter(pl.col("query_id") == "q"))
