"""Learning-to-rank features, checked against hand-worked values."""

from __future__ import annotations

import polars as pl
import pytest

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
