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
from collections.abc import Set as AbstractSet

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


def jaccard(a: AbstractSet[str], b: AbstractSet[str]) -> float:
    """|a & b| / |a | b|; 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions cost 1), by rapidfuzz (C++)."""
    return Levenshtein.distance(a, b)


def token_ratio(a: str, b: str) -> float:
    """1 - levenshtein / max length, in [0, 1]; 1 for equal tokens."""
    return Levenshtein.normalized_similarity(a, b)


def best_token_ratios(query_tokens: Sequence[str], title_tokens: Sequence[str]) -> list[float]:
    """For each query token, its best `token_ratio` against any title token (0 without title
    tokens): one rapidfuzz cdist call for the whole token matrix."""
    if not title_tokens:
        return [0.0] * len(query_tokens)
    if not query_tokens:
        return []
    matrix = process.cdist(query_tokens, title_tokens, scorer=Levenshtein.normalized_similarity)
    return matrix.max(axis=1).tolist()


def _contains_seq(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n > 0 and any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


@functools.lru_cache(maxsize=1 << 17)
def _parts(text: str) -> tuple[list[str], frozenset[str], tuple[str, ...], frozenset[str]]:
    """(tokens, token set, sorted distinct tokens, character 3-grams) of a text: each catalog
    title and query is split once per process, however many pairs it is in."""
    tokens = tokenize(text)
    distinct = frozenset(tokens)
    return tokens, distinct, tuple(sorted(distinct)), frozenset(char_ngrams(text))


def text_features(query: str, title: str, groups: Sequence[str] = GROUPS) -> dict[str, float]:
    """The text features of one (query, title) pair, for the requested groups."""
    q, qs, q_sorted, q3 = _parts(query)
    t, ts, t_sorted, t3 = _parts(title)
    out: dict[str, float] = {}
    if "lexical" in groups:
        common = len(qs & ts)
        out["overlap"] = float(common)
        out["overlap_frac"] = common / len(qs) if qs else 0.0
        out["jaccard"] = jaccard(qs, ts)
        out["phrase"] = float(_contains_seq(t, q))
    if "fuzzy" in groups:
        out["char3_jaccard"] = jaccard(q3, t3)
        best = best_token_ratios(q_sorted, t_sorted)
        out["fuzzy_token"] = sum(best) / len(best) if best else 0.0
    if "length" in groups:
        out["query_tokens"] = float(len(q))
        out["query_chars"] = float(len(query))
        out["title_tokens"] = float(len(t))
        out["title_chars"] = float(len(title))
    if "numeric" in groups:
        nums = {w for w in qs if any(c.isdigit() for c in w)}
        hit = len(nums & ts)
        out["numeric_match"] = float(hit)
        out["numeric_frac"] = hit / len(nums) if nums else 0.0
        out["query_has_numeric"] = float(bool(nums))
    return out


def text_feature_names(groups: Sequence[str]) -> list[str]:
    return [f for g in TEXT_FEATURES if g in groups for f in TEXT_FEATURES[g]]


def text_feature_frame(pairs: pl.DataFrame, groups: Sequence[str] = GROUPS) -> pl.DataFrame:
    """pairs (query_id, item_id, query_text, item_text) -> (query_id, item_id, features...)."""
    names = text_feature_names(groups)
    keys = pairs.select(QUERY_ID, ITEM_ID)
    if not names:
        return keys
    memo: dict[tuple[str, str], dict[str, float]] = {}
    rows = []
    for qt, it in zip(pairs[QUERY_TEXT].to_list(), pairs[ITEM_TEXT].to_list(), strict=True):
        key = (qt or "", it or "")
        if key not in memo:
            memo[key] = text_features(key[0], key[1], groups)
        rows.append(memo[key])
    cols = {n: pl.Series(n, [r[n] for r in rows], dtype=pl.Float64) for n in names}
    return keys.with_columns(**cols)


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
    """
    r = run.select(
        QUERY_ID,
        ITEM_ID,
        pl.col(SCORE).cast(pl.Float64).alias("_s"),
        (1.0 / pl.col(RANK).cast(pl.Float64)).alias(f"{name}_rr"),
    )
    lows = r.group_by(QUERY_ID).agg(pl.col("_s").min().alias("_low"))
    out = (
        candidates.select(QUERY_ID, ITEM_ID)
        .join(r, on=[QUERY_ID, ITEM_ID], how="left", maintain_order="left")
        .join(lows, on=QUERY_ID, how="left", maintain_order="left")
    )
    missing = pl.col("_s").is_null()
    rr = pl.col(f"{name}_rr").fill_null(0.0)
    if exact is not None:
        score = pl.Series(f"{name}_score", list(exact), dtype=pl.Float64)
        return out.select(QUERY_ID, ITEM_ID, score, rr)
    return out.select(
        QUERY_ID,
        ITEM_ID,
        pl.coalesce("_s", "_low", pl.lit(0.0)).alias(f"{name}_score"),
        rr,
        missing.cast(pl.Float64).alias(f"{name}_missing"),
    )
