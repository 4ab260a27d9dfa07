"""TF-IDF review keywords: a hand-worked example, determinism and the config."""

import math

import pytest

from shelflab.errors import ConfigError
from shelflab.reviews.keywords import KeywordConfig, review_terms, tfidf_keywords

CFG = KeywordConfig(max_keywords=3, ngrams=1, min_reviews=1, min_reviews_below=1)


def test_hand_worked_weights():
    reviews = {
        "A": ["great shampoo", "shampoo smells great", "nice lather"],
        "B": ["great blush color"],
    }
    # A: great 2 reviews (df 2), shampoo 2 (df 1), smells 1 (df 1), nice/lather 1 (df 1)
    # idf(df=1) = ln(3/2) + 1 = 1.405, idf(df=2) = ln(3/3) + 1 = 1
    # shampoo: (1 + ln 2) * 1.405 = 2.379 > great: (1 + ln 2) * 1 = 1.693 > lather/nice/smells 1.405
    got = tfidf_keywords(reviews, CFG)
    assert got["A"] == ["shampoo", "great", "lather"]  # ties (1.405) break alphabetically
    assert got["B"] == ["blush", "color", "great"]
    assert (1 + math.log(2)) * (math.log(1.5) + 1) > (1 + math.log(2))


def test_min_reviews_floor_only_for_items_with_enough_reviews():
    cfg = KeywordConfig(max_keywords=5, ngrams=1, min_reviews=2, min_reviews_below=3)
    got = tfidf_keywords({"A": ["alpha beta", "alpha gamma", "alpha delta"], "B": ["zeta"]}, cfg)
    assert got == {"A": ["alpha"], "B": ["zeta"]}  # A: only alpha is in >= 2 reviews


def test_terms_stopwords_digits_and_bigrams():
    terms = review_terms("I love this Body-Wash, 100 stars!", KeywordConfig(ngrams=2))
    assert terms == {"love", "body-wash", "stars", "love body-wash", "body-wash stars"}


def test_common_terms_dropped_with_ten_items_or_more():
    reviews = {f"i{n}": [f"five stars unique{n}"] for n in range(10)}
    got = tfidf_keywords(reviews, KeywordConfig(max_keywords=5, ngrams=1, min_reviews=1))
    assert got["i3"] == ["unique3"]


def test_deterministic_across_input_order():
    a = {"x": ["red lipstick lasts", "lipstick red"], "y": ["blue mascara", "mascara clumps"]}
    b = {k: list(reversed(v)) for k, v in reversed(a.items())}
    assert tfidf_keywords(a) == tfidf_keywords(b)


def test_config_rejects_unknown_keys():
    assert KeywordConfig.from_params({"backend": "tfidf", "max_df": 0.4}).max_df == 0.4
    with pytest.raises(ConfigError, match="max_kw"):
        KeywordConfig.from_params({"max_kw": 3})
