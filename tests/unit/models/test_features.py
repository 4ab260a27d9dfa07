"""Learning-to-rank features, checked against hand-worked values."""

from __future__ import annotations

import polars as pl
import pytest

from shelflab.models import features
from shelflab.models.features import (
    char_ngrams,
    levenshtein,
    model_score_features,
    text_feature_frame,
    text_features,
    token_ratio,
    tokenize,
)


def test_tokenize_keeps_decimals_and_model_numbers():
    assert tokenize("Drill 3.5-in. DeWalt DCD771C2") == ["drill", "3.5", "in", "dewalt", "dcd771c2"]
    assert tokenize("  ") == []


def test_char_ngrams():
    assert char_ngrams("abcd") == {"abc", "bcd"}
    assert char_ngrams("A  b") == {"a b"}  # lower-cased, whitespace collapsed
    assert char_ngrams("ab") == {"ab"}
    assert char_ngrams("") == set()


def test_levenshtein_and_ratio():
    assert levenshtein("drils", "drill") == 1
    assert levenshtein("", "abc") == 3
    assert levenshtein("kitten", "sitting") == 3
    assert token_ratio("drils", "drill") == pytest.approx(0.8)
    assert token_ratio("x", "x") == 1.0


def test_text_features_typo_query():
    f = text_features("cordless drils 18v", "DeWalt 18V Cordless Drill")
    # query tokens {cordless, drils, 18v}; title tokens {dewalt, 18v, cordless, drill}
    assert f["overlap"] == 2
    assert f["overlap_frac"] == pytest.approx(2 / 3)
    assert f["jaccard"] == pytest.approx(2 / 5)
    assert f["phrase"] == 0.0
    # best token ratios: cordless 1, 18v 1, drils~drill 0.8
    assert f["fuzzy_token"] == pytest.approx((1 + 1 + 0.8) / 3)
    assert (f["query_tokens"], f["query_chars"]) == (3, 18)
    assert (f["title_tokens"], f["title_chars"]) == (4, 25)
    assert (f["numeric_match"], f["numeric_frac"], f["query_has_numeric"]) == (1, 1.0, 1.0)


def test_text_features_phrase_chars_and_no_numbers():
    f = text_features("cordless drill", "DeWalt 18V Cordless Drill Kit")
    assert f["phrase"] == 1.0
    assert (f["numeric_match"], f["numeric_frac"], f["query_has_numeric"]) == (0, 0.0, 0.0)
    # {abc, bcd} vs {bcd, cde}
    assert text_features("abcd", "bcde")["char3_jaccard"] == pytest.approx(1 / 3)
    empty = text_features("", "")
    assert empty["overlap_frac"] == empty["jaccard"] == empty["fuzzy_token"] == 0.0


def test_text_feature_frame_groups_and_order():
    pairs = pl.DataFrame(
        {
            "query_id": ["q1", "q1"],
            "item_id": ["b", "a"],
            "query_text": ["wood screw", "wood screw"],
            "item_text": ["wood screw 2 in", "metal nail"],
        }
    )
    got = text_feature_frame(pairs, ["lexical"])
    assert got.columns == ["query_id", "item_id", "overlap", "overlap_frac", "jaccard", "phrase"]
    assert got["item_id"].to_list() == ["b", "a"]
    assert got["overlap"].to_list() == [2.0, 0.0]
    assert got["jaccard"].to_list() == [pytest.approx(0.5), 0.0]
    assert got["phrase"].to_list() == [1.0, 0.0]


def test_model_score_features_fill_and_exact():
    cands = pl.DataFrame({"query_id": ["q1", "q1", "q1", "q2"], "item_id": ["a", "b", "c", "a"]})
    run = pl.DataFrame(
        {"query_id": ["q1", "q1"], "item_id": ["a", "c"], "score": [5.0, 2.0], "rank": [1, 2]}
    )
    got = model_score_features(cands, run, "bm")
    assert got.columns == ["query_id", "item_id", "bm_score", "bm_rr", "bm_missing"]
    # b is missing for q1 -> q1's lowest score; q2 has no run rows -> 0
    assert got["bm_score"].to_list() == [5.0, 2.0, 2.0, 0.0]
    assert got["bm_rr"].to_list() == [1.0, 0.0, 0.5, 0.0]
    assert got["bm_missing"].to_list() == [0.0, 1.0, 0.0, 1.0]
    exact = model_score_features(cands, run, "cos", exact=[0.1, 0.2, 0.3, 0.4])
    assert exact.columns == ["query_id", "item_id", "cos_score", "cos_rr"]
    assert exact["cos_score"].to_list() == [0.1, 0.2, 0.3, 0.4]


@pytest.mark.parametrize("path", ["per_query", "batch"])
def test_text_feature_frame_equals_text_features_of_every_real_pair(repo_root, monkeypatch, path):
    """The frame is computed a query at a time (one cdist per query) or, for large frames, as
    polars joins; each of its rows must equal `text_features` of that pair alone, on real
    sample queries x real titles (repeated queries, empty texts, titles without tokens,
    non-ASCII and odd whitespace included)."""
    import gzip

    monkeypatch.setattr(features, "BATCH_PAIRS", 0 if path == "batch" else 10**9)

    items = pl.read_csv(repo_root / "data/sample/products.csv.gz", encoding="utf8-lossy")
    with gzip.open(repo_root / "data/sample/train.csv.gz", "rt", encoding="latin-1") as f:
        queries = pl.read_csv(f.read().encode(), encoding="utf8-lossy")["search_term"]
    odd = [
        "Caf\u00e9 \u00a0 ST\u00dcHL\x1c3.5-in.\t\tw",
        " ab ",
        "\u0130stanbul \u03a3\u03a3",
        "w\x1c\x1fx 2",
        "w x 2",
    ]
    titles = [*items["product_title"].head(60).to_list(), "", "---", None, *odd]
    texts = [*queries.unique(maintain_order=True).head(12).to_list(), "", "2 x 4", None, *odd]
    pairs = pl.DataFrame(
        {
            "query_id": [f"q{i}" for i, _ in enumerate(texts) for _ in titles],
            "item_id": [f"i{j}" for _ in texts for j, _ in enumerate(titles)],
            "query_text": [t for t in texts for _ in titles],
            "item_text": [t for _ in texts for t in titles],
        }
    )
    got = text_feature_frame(pairs)
    assert got.height == pairs.height and got.columns[:2] == ["query_id", "item_id"]
    for row, (qt, it) in enumerate(zip(pairs["query_text"], pairs["item_text"], strict=True)):
        alone = text_features(qt or "", it or "")
        want = _pair_features(qt or "", it or "")
        assert alone.keys() == want.keys()
        for name, value in want.items():
            tol = 1e-7 if name == "fuzzy_token" else 1e-12  # rapidfuzz's cdist is float32
            assert got[name][row] == pytest.approx(value, abs=tol), (qt, it, name)
            assert alone[name] == pytest.approx(value, abs=tol), (qt, it, name)


def _pair_features(query: str, title: str) -> dict[str, float]:
    """An independent per-pair reference of every text feature, from the documented
    definitions (set Jaccard, per-pair best token ratios)."""
    q, t = tokenize(query), tokenize(title)
    qs, ts = set(q), set(t)
    best = best_token_ratios(sorted(qs), sorted(ts))
    nums = {w for w in qs if any(c.isdigit() for c in w)}
    common = len(qs & ts)
    return {
        "overlap": float(common),
        "overlap_frac": common / len(qs) if qs else 0.0,
        "jaccard": jaccard(qs, ts),
        "phrase": float(bool(q) and any(t[i : i + len(q)] == q for i in range(len(t)))),
        "char3_jaccard": jaccard(char_ngrams(query), char_ngrams(title)),
        "fuzzy_token": sum(best) / len(best) if best else 0.0,
        "query_tokens": float(len(q)),
        "query_chars": float(len(query)),
        "title_tokens": float(len(t)),
        "title_chars": float(len(title)),
        "numeric_match": float(len(nums & ts)),
        "numeric_frac": len(nums & ts) / len(nums) if nums else 0.0,
        "query_has_numeric": float(bool(nums)),
    }


def jaccard(a: set[str], b: set[str]) -> float:
    """|a & b| / |a | b|; 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def best_token_ratios(query_tokens: list[str], title_tokens: list[str]) -> list[float]:
    """For each query token, its best token_ratio against any title token (0 without title
    tokens), a pair at a time."""
    return [max((token_ratio(q, t) for t in title_tokens), default=0.0) for q in query_tokens]


def test_model_score_features_equal_a_polars_join(repo_root):
    """Dict lookups against the join they replace, on a real bm25-like run: 3 queries, the
    candidates a superset of the run for one query and disjoint for another."""
    run = pl.DataFrame(
        {
            "query_id": ["a"] * 4 + ["b"] * 3,
            "item_id": ["x", "y", "z", "w", "x", "v", "u"],
            "score": [9.5, 7.25, 7.25, 1.0, 3.0, 2.0, -1.5],
            "rank": [1, 2, 3, 4, 1, 2, 3],
        }
    )
    cands = pl.DataFrame(
        {"query_id": ["a", "a", "a", "b", "b", "c", "c"],
         "item_id": ["z", "q", "x", "u", "x", "x", "y"]}
    )  # fmt: skip
    r = run.select("query_id", "item_id", pl.col("score").alias("_s"),
                   (1.0 / pl.col("rank")).alias("m_rr"))  # fmt: skip
    lows = r.group_by("query_id").agg(pl.col("_s").min().alias("_low"))
    want = (
        cands.join(r, on=["query_id", "item_id"], how="left", maintain_order="left")
        .join(lows, on="query_id", how="left", maintain_order="left")
        .select(
            "query_id",
            "item_id",
            pl.coalesce("_s", "_low", pl.lit(0.0)).alias("m_score"),
            pl.col("m_rr").fill_null(0.0),
            pl.col("_s").is_null().cast(pl.Float64).alias("m_missing"),
        )
    )
    assert model_score_features(cands, run, "m").equals(want)
