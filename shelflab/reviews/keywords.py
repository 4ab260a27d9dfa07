"""Review keywords per item: TF-IDF over each item's (train-period) reviews, offline and exact.

Each item is one document made of its reviews. A term's weight in an item is
`(1 + ln reviews_with_term) * idf`, with `idf = ln((1 + n_items) / (1 + items_with_term)) + 1`
(scikit-learn's sublinear tf and smooth idf), so a word many reviewers of this product use and few
other products' reviewers use ranks first. Counting reviews rather than occurrences keeps one long
review from filling the list; terms in more than `max_df` of the items ("five stars", "love") are
dropped when there are at least 10 items. Terms are lower-cased words (letters, digits, inner
' and -) of at least `min_chars`, minus English stopwords, plus bigrams of two such words when
`ngrams` is 2. Ties break alphabetically, so the output is a pure function of the input.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

TOKEN = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")

# a short, fixed list: the extractor must not depend on an installed stopword corpus
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each even
    ever every few for from further get gets got had has have having he her here hers
    herself him himself his how i if in into is it its itself just let me more most much my
    myself no nor not now of off on once one only or other our ours ourselves out over own
    really same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up upon us use used using very
    was we well were what when where which while who whom why will with would you your yours
    yourself yourselves i'm it's don't didn't doesn't can't won't i've i'd i'll you're
    they're that's isn't wasn't
    """.split()  # noqa: SIM905 - one readable block
)


@dataclass(frozen=True)
class KeywordConfig:
    max_keywords: int = 15
    ngrams: int = 2  # 1: words only; 2: words and bigrams
    min_chars: int = 3
    min_reviews: int = 2  # a term must appear in this many reviews of the item ...
    min_reviews_below: int = 3  # ... unless the item has fewer reviews than this
    max_df: float = 0.5  # drop terms found in more than this share of the items

    @classmethod
    def from_params(cls, params: Mapping[str, object] | None) -> KeywordConfig:
        from dataclasses import fields

        from shelflab.errors import ConfigError

        params = dict(params or {})
        params.pop("backend", None)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"unknown review keyword option(s) {', '.join(unknown)} "
                f"(expected: backend, {', '.join(sorted(known))})"
            )
        typed = {k: float(v) if k == "max_df" else int(v) for k, v in params.items()}
        return cls(**typed)  # type: ignore[arg-type]


def review_terms(text: str, cfg: KeywordConfig) -> set[str]:
    """The distinct terms of one review."""
    words = [w for w in TOKEN.findall(text.lower()) if w not in STOPWORDS]
    words = [w for w in words if len(w) >= cfg.min_chars and not w.isdigit()]
    terms = set(words)
    if cfg.ngrams >= 2:
        terms.update(f"{a} {b}" for a, b in itertools.pairwise(words) if a != b)
    return terms


def tfidf_keywords(
    item_reviews: Mapping[str, Sequence[str]], cfg: KeywordConfig | None = None
) -> dict[str, list[str]]:
    """item_id -> its top keywords (possibly empty), for every item in `item_reviews`."""
    cfg = cfg or KeywordConfig()
    per_item: dict[str, Counter[str]] = {}
    for item, reviews in item_reviews.items():
        counts: Counter[str] = Counter()
        for text in reviews:
            counts.update(review_terms(text, cfg))
        per_item[item] = counts
    df: Counter[str] = Counter()
    for counts in per_item.values():
        df.update(counts.keys())
    n = len(per_item)
    common = n * cfg.max_df if n >= 10 else n
    idf = {t: math.log((1 + n) / (1 + d)) + 1.0 for t, d in df.items() if d <= common}
    return {
        item: _top(counts, idf, len(item_reviews[item]), cfg)
        for item, counts in sorted(per_item.items())
    }


def _top(
    counts: Counter[str], idf: dict[str, float], n_reviews: int, cfg: KeywordConfig
) -> list[str]:
    floor = cfg.min_reviews if n_reviews >= cfg.min_reviews_below else 1
    scored = [
        (-(1.0 + math.log(c)) * idf[t], t) for t, c in counts.items() if c >= floor and t in idf
    ]
    scored.sort()
    chosen: list[str] = []
    for _, term in scored:
        # a bigram whose two words are both already in adds nothing; a word inside a chosen
        # bigram is kept (it also matches alone)
        if " " in term and all(w in chosen for w in term.split()):
            continue
        chosen.append(term)
        if len(chosen) == cfg.max_keywords:
            break
    return chosen


def group_reviews(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(item_id, text) pairs -> item_id -> texts, in input order."""
    out: dict[str, list[str]] = {}
    for item, text in pairs:
        out.setdefault(item, []).append(text)
    return out
