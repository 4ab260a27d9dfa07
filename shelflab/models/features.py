"""Pure feature functions for learning to rank over (query, candidate item) pairs.

Two kinds, both returning polars frames keyed by (query_id, item_id):

- text features of the pair (`text_features`, `text_feature_frame`), by group:
  - "lexical": query/title token overlap (count, fraction of query tokens in the title,
    Jaccard), exact phrase containment (the query's token sequence appears in the title's);
  - "fuzzy": character 3-gram Jaccard of the two texts (typo-robust) and the fuzzy
    best-token match (mean over query tokens of the best Levenshtein ratio against any title
    token; ratio = 1 - distance / max(len));
  - "length": query tokens and characters, title tokens and characters;
  - "numeric": numeric tokens (model numbers, sizes: any token with a digit) of the query found
    in the title, as a count and a fraction (0 when the query has none), and a flag for a query
    with numeric tokens;
- model score features (`model_score_features`, group "scores"): per component model, its
  score for the pair, its reciprocal rank in its own top list (0 when absent) and, when the
  score had to be filled in, a `missing` indicator.

Tokens: lower-cased maximal runs of [a-z0-9], a decimal point inside digits kept ("3.5").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from shelflab.contract import ITEM_ID, QUERY_ID, RANK, SCORE

GROUPS = ("scores", "lexical", "fuzzy", "length", "numeric")
TEXT_FEATURES: dict[str, tuple[str, ...]] = {
    "lexical": ("overlap", "overlap_frac", "jaccard", "phrase"),
    "fuzzy": ("char3_jaccard", "fuzzy_token"),
    "length": ("query_tokens", "query_chars", "title_tokens", "title_chars"),
    "numeric": ("numeric_match", "numeric_frac", "query_has_numeric"),
}
QUERY_TEXT, ITEM_TEXT = "query_text", "item_text"

_TOKEN = re.compile(r"[0-9]+(?:\.[0-9]+)+|[a-z0-9]+")
BATCH_PAIRS = 5_000  # pairs from which text_feature_frame computes with polars joins


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens: "Drill 3.5-in. DeWalt" -> [drill, 3.5, in, dewalt]."""
    return _TOKEN.findall(text.lower())


def char_ngrams(text: str, n: int = 3) -> set[str]:
    """Character n-grams of the lower-cased, whitespace-collapsed text (the whole text when it
    is shorter than n, nothing when empty)."""
    s = " ".join(text.lower().split())
    if not s:
        return set()
    if len(s) <= n:
        return {s}
    return {s[i : i + n] for i in range(len(s) - n + 1)}


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions cost 1), by rapidfuzz (C++)."""
    return Levenshtein.distance(a, b)


def token_ratio(a: str, b: str) -> float:
    """1 - levenshtein / max length, in [0, 1]; 1 for equal tokens."""
    return Levenshtein.normalized_similarity(a, b)


@functools.lru_cache(maxsize=1 << 17)
def _parts(text: str) -> tuple[list[str], frozenset[str], tuple[str, ...], frozenset[str], str]:
    """(tokens, token set, sorted distinct tokens, character 3-grams, " tokens joined ") of a
    text: each catalog title and query is split once per process, however many pairs it is
    in. Tokens hold no space, so a phrase match is a substring test on the joined form."""
    tokens = tokenize(text)
    distinct = frozenset(tokens)
    joined = f" {' '.join(tokens)} "
    return tokens, distinct, tuple(sorted(distinct)), frozenset(char_ngrams(text)), joined


def text_features(query: str, title: str, groups: Sequence[str] = GROUPS) -> dict[str, float]:
    """The text features of one (query, title) pair, for the requested groups."""
    names = text_feature_names(groups)
    row = _query_features(query, [title], groups, names)[0]
    return {name: float(value) for name, value in zip(names, row, strict=True)}


def text_feature_names(groups: Sequence[str]) -> list[str]:
    return [f for g in TEXT_FEATURES if g in groups for f in TEXT_FEATURES[g]]


def text_feature_frame(pairs: pl.DataFrame, groups: Sequence[str] = GROUPS) -> pl.DataFrame:
    """pairs (query_id, item_id, query_text, item_text) -> (query_id, item_id, features...).

    Equal to `text_features` of every pair. From BATCH_PAIRS pairs on (a training pass) as
    polars joins over token tables (`text_feature_batch`); fewer (one request's candidates) a
    query at a time in Python over cached title splits: the query is split once and its fuzzy
    token ratios against all its candidates' tokens are one rapidfuzz cdist call (one per pair
    made a single query's reranking 5 ms slower; polars' fixed cost per operation would too)."""
    import numpy as np

    names = text_feature_names(groups)
    keys = pairs.select(QUERY_ID, ITEM_ID)
    if not names:
        return keys
    if pairs.height >= BATCH_PAIRS:
        from shelflab.models.text_feature_batch import text_feature_table

        out = text_feature_table(pairs, QUERY_TEXT, ITEM_TEXT, groups, names, _TOKEN.pattern)
        return keys.hstack(pl.from_numpy(out, schema=names, orient="row"))
    queries = [q or "" for q in pairs[QUERY_TEXT].to_list()]
    titles = [t or "" for t in pairs[ITEM_TEXT].to_list()]
    rows_of: dict[str, list[int]] = {}
    for row, query in enumerate(queries):
        rows_of.setdefault(query, []).append(row)
    out = np.zeros((len(titles), len(names)), dtype=np.float64)
    for query, rows in rows_of.items():
        out[rows] = _query_features(query, [titles[r] for r in rows], groups, names)
    return keys.hstack(pl.from_numpy(out, schema=names, orient="row"))


def _query_features(query: str, titles: list[str], groups: Sequence[str], names: list[str]) -> Any:
    """`text_features(query, title)` of each title: a float64 array, columns in `names` order,
    computed a column at a time."""
    import numpy as np

    q, qs, q_sorted, q3, _ = _parts(query)
    parts = [_parts(t) for t in titles]
    n = len(titles)

    def column(values: Any) -> Any:
        return np.fromiter(values, dtype=np.float64, count=n)

    def ratio(top: Any, bottom: Any) -> Any:
        return np.divide(top, bottom, out=np.zeros(n), where=bottom > 0)

    cols: dict[str, Any] = {}
    if "lexical" in groups:
        common = column(len(qs & p[1]) for p in parts)
        cols["overlap"] = common
        cols["overlap_frac"] = common / len(qs) if qs else np.zeros(n)
        cols["jaccard"] = ratio(common, len(qs) + column(len(p[1]) for p in parts) - common)
        phrase = f" {' '.join(q)} "
        cols["phrase"] = column(bool(q) and phrase in p[4] for p in parts)
    if "fuzzy" in groups:
        common3 = column(len(q3 & p[3]) for p in parts)
        cols["char3_jaccard"] = ratio(common3, len(q3) + column(len(p[3]) for p in parts) - common3)
        cols["fuzzy_token"] = _fuzzy_token(q_sorted, [p[2] for p in parts])
    if "length" in groups:
        cols["query_tokens"] = np.full(n, float(len(q)))
        cols["query_chars"] = np.full(n, float(len(query)))
        cols["title_tokens"] = column(len(p[0]) for p in parts)
        cols["title_chars"] = column(len(t) for t in titles)
    if "numeric" in groups:
        nums = {w for w in qs if any(c.isdigit() for c in w)}
        hit = column(len(nums & p[1]) for p in parts)
        cols["numeric_match"] = hit
        cols["numeric_frac"] = hit / len(nums) if nums else np.zeros(n)
        cols["query_has_numeric"] = np.full(n, float(bool(nums)))
    return np.column_stack([cols[name] for name in names]) if n else np.zeros((0, len(names)))


def _fuzzy_token(query_tokens: Sequence[str], titles: list[tuple[str, ...]]) -> Any:
    """Per title: the mean over the query's distinct tokens of each one's best `token_ratio`
    against the title's distinct tokens (0 without tokens); one cdist over the titles' joint
    vocabulary, then a max per (query token, title)."""
    import numpy as np

    out = np.zeros(len(titles))
    vocab = sorted({w for t in titles for w in t})
    if not query_tokens or not vocab:
        return out
    column = {w: j for j, w in enumerate(vocab)}
    matrix = process.cdist(query_tokens, vocab, scorer=Levenshtein.normalized_similarity)
    filled = [i for i, t in enumerate(titles) if t]
    cols = np.fromiter((column[w] for i in filled for w in titles[i]), dtype=np.int64)
    starts = np.cumsum([0] + [len(titles[i]) for i in filled[:-1]])
    best = np.maximum.reduceat(matrix[:, cols], starts, axis=1)  # (query tokens, titles)
    out[filled] = best.astype(np.float64).mean(axis=0)
    return out


def model_score_features(
    candidates: pl.DataFrame,
    run: pl.DataFrame,
    name: str,
    exact: Sequence[float] | None = None,
) -> pl.DataFrame:
    """Features of one component model for the candidate pairs (query_id, item_id):

    - `<name>_score`: `exact[i]` for candidate row i when given (a score computed for every
      pair, e.g. cosine from embeddings); else the run's score, and a pair absent from the run
      gets the run's lowest score for that query (0 when the run has nothing for it);
    - `<name>_rr`: 1 / rank in the run, 0 when absent;
    - `<name>_missing` (only without `exact`): 1 when the pair is absent from the run.

    Dict lookups, not joins: a single query's three components took 5 ms of polars joins."""
    found: dict[tuple[str, str], tuple[float, float]] = {}
    low: dict[str, float] = {}
    for q, i, s, r in zip(
        run[QUERY_ID].to_list(),
        run[ITEM_ID].to_list(),
        run[SCORE].cast(pl.Float64).to_list(),
        run[RANK].to_list(),
        strict=True,
    ):
        found[(q, i)] = (s, 1.0 / r)
        if s is not None and (q not in low or s < low[q]):
            low[q] = s
    keys = candidates.select(QUERY_ID, ITEM_ID)
    pairs = zip(keys[QUERY_ID].to_list(), keys[ITEM_ID].to_list(), strict=True)
    hits = [found.get(pair) for pair in pairs]
    rr = pl.Series(f"{name}_rr", [h[1] if h else 0.0 for h in hits], dtype=pl.Float64)
    if exact is not None:
        return keys.with_columns(pl.Series(f"{name}_score", list(exact), dtype=pl.Float64), rr)
    qids = keys[QUERY_ID].to_list()
    score = [h[0] if h else low.get(q, 0.0) for h, q in zip(hits, qids, strict=True)]
    return keys.with_columns(
        pl.Series(f"{name}_score", score, dtype=pl.Float64),
        rr,
        pl.Series(f"{name}_missing", [0.0 if h else 1.0 for h in hits], dtype=pl.Float64),
    )
