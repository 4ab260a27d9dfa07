"""The text features of many (query, title) pairs at once, as polars joins: what a training
pass over 100 candidates x thousands of queries needs. Equal to `features.text_features` of
every pair (a test checks both on real pairs); `features.text_feature_frame` sends large
frames here and keeps its per-query Python path, with its cache of split titles, for the
few pairs of one request.

Token and character 3-gram sets become (text, token) tables, their intersections per pair
are join counts; only the fuzzy best-token match stays per query (one rapidfuzz cdist each).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

# Python's str.split() whitespace: Unicode White_Space (regex \s) plus the separators \x1c-\x1f
_SPACE = r"[\s\x1c-\x1f]+"
CHUNK_PAIRS = 200_000  # pairs per pass: bounds the pair x query-3-gram table (~20 per query)


def text_feature_table(
    pairs: pl.DataFrame,
    query_text: str,
    item_text: str,
    groups: Sequence[str],
    names: list[str],
    token_pattern: str,
) -> np.ndarray:
    """A float64 array (pairs x names) of the text features of `pairs`' (query, title) texts."""
    out = np.zeros((pairs.height, len(names)))
    for start in range(0, pairs.height, CHUNK_PAIRS):
        chunk = pairs.slice(start, CHUNK_PAIRS)
        cols = _chunk_features(chunk, query_text, item_text, groups, token_pattern)
        out[start : start + chunk.height] = np.column_stack([cols[name] for name in names])
    return out


def _chunk_features(
    pairs: pl.DataFrame, query_text: str, item_text: str, groups: Sequence[str], pattern: str
) -> dict[str, np.ndarray]:
    texts = pairs.select(
        pl.col(query_text).fill_null("").alias("q"), pl.col(item_text).fill_null("").alias("t")
    )
    queries = texts.select("q").unique(maintain_order=True).with_row_index("qk")
    titles = texts.select("t").unique(maintain_order=True).with_row_index("tk")
    keys = (
        texts.with_row_index("pair")
        .join(queries, on="q", how="left", maintain_order="left")
        .join(titles, on="t", how="left", maintain_order="left")
        .select("pair", "qk", "tk")
    )
    n = pairs.height
    q_tok = _tokens(queries, "q", "qk", pattern)
    t_tok = _tokens(titles, "t", "tk", pattern)
    q_set, t_set = _distinct(q_tok, "qk"), _distinct(t_tok, "tk")
    q_len = _per_text(q_tok, "qk", queries.height)
    t_len = _per_text(t_tok, "tk", titles.height)
    q_distinct = _per_text(q_set, "qk", queries.height)
    t_distinct = _per_text(t_set, "tk", titles.height)
    qk, tk = keys["qk"].to_numpy(), keys["tk"].to_numpy()

    def ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        return np.divide(top, bottom, out=np.zeros(n), where=bottom > 0)

    cols: dict[str, np.ndarray] = {}
    if "lexical" in groups:
        common = _common(keys, q_set, t_set, n)
        cols["overlap"] = common
        cols["overlap_frac"] = ratio(common, q_distinct[qk])
        cols["jaccard"] = ratio(common, q_distinct[qk] + t_distinct[tk] - common)
        cols["phrase"] = _phrase(keys, q_tok, t_tok)
    if "fuzzy" in groups:
        q3, t3 = _trigrams(queries, "q", "qk"), _trigrams(titles, "t", "tk")
        common3 = _common(keys, q3, t3, n)
        q3_n, t3_n = _per_text(q3, "qk", queries.height), _per_text(t3, "tk", titles.height)
        cols["char3_jaccard"] = ratio(common3, q3_n[qk] + t3_n[tk] - common3)
        cols["fuzzy_token"] = _fuzzy_tokens(keys, q_set, t_set, n)
    if "length" in groups:
        cols["query_tokens"] = q_len[qk]
        cols["query_chars"] = queries["q"].str.len_chars().cast(pl.Float64).to_numpy()[qk]
        cols["title_tokens"] = t_len[tk]
        cols["title_chars"] = titles["t"].str.len_chars().cast(pl.Float64).to_numpy()[tk]
    if "numeric" in groups:
        nums = q_set.filter(pl.col("tok").str.contains("[0-9]"))
        hit = _common(keys, nums, t_set, n)
        nums_n = _per_text(nums, "qk", queries.height)[qk]
        cols["numeric_match"] = hit
        cols["numeric_frac"] = ratio(hit, nums_n)
        cols["query_has_numeric"] = (nums_n > 0).astype(np.float64)
    return cols


def _tokens(texts: pl.DataFrame, text: str, key: str, pattern: str) -> pl.DataFrame:
    """(key, tok) for every token occurrence, in text order (`features.tokenize`)."""
    return (
        texts.select(key, pl.col(text).str.to_lowercase().str.extract_all(pattern).alias("tok"))
        .explode("tok")
        .drop_nulls("tok")
    )


def _trigrams(texts: pl.DataFrame, text: str, key: str) -> pl.DataFrame:
    """Distinct (key, tok) character 3-grams of the lower-cased, whitespace-collapsed text
    (the whole text when shorter than 3 characters, none when empty): `features.char_ngrams`.
    A 3-gram is kept as its 64-bit hash: distinct strings of 1.1M 3-grams took three times
    longer; two 3-grams of one pair sharing a hash (odds ~1e-16 per pair) would count once."""
    s = pl.col(text).str.to_lowercase().str.replace_all(_SPACE, " ").str.strip_chars(" ")
    collapsed = texts.select(key, s.alias("s")).with_columns(pl.col("s").str.len_chars().alias("n"))
    ends = pl.when(pl.col("n") == 0).then(0).otherwise(pl.max_horizontal(pl.col("n") - 2, 1))
    return (
        collapsed.with_columns(pl.int_ranges(0, ends).alias("at"))
        .explode("at")
        .drop_nulls("at")
        .select(key, pl.col("s").str.slice(pl.col("at"), 3).hash(seed=3).alias("tok"))
        .pipe(_distinct, key)
    )


def _distinct(table: pl.DataFrame, key: str) -> pl.DataFrame:
    """The distinct (key, tok) rows: per key, which is 6x faster than `unique()` on both."""
    return table.group_by(key).agg(pl.col("tok").unique()).explode("tok").drop_nulls("tok")


def _per_text(table: pl.DataFrame, key: str, size: int) -> np.ndarray:
    """Rows of `table` per text key, as float64 indexed by key."""
    counts = np.zeros(size)
    if table.height:
        counted = table.group_by(key).len()
        counts[counted[key].to_numpy()] = counted["len"].to_numpy()
    return counts


def _common(keys: pl.DataFrame, q_set: pl.DataFrame, t_set: pl.DataFrame, n: int) -> np.ndarray:
    """Per pair: |query's set & title's set| (tables of distinct (qk|tk, tok))."""
    shared = (
        keys.join(q_set, on="qk").join(t_set, on=["tk", "tok"], how="semi").group_by("pair").len()
    )
    out = np.zeros(n)
    out[shared["pair"].to_numpy()] = shared["len"].to_numpy()
    return out


def _phrase(keys: pl.DataFrame, q_tok: pl.DataFrame, t_tok: pl.DataFrame) -> np.ndarray:
    """1 where the query's token sequence appears in the title's (0 for a query without
    tokens): tokens hold no space, so it is a substring test on the space-joined forms."""

    def joined(tokens: pl.DataFrame, key: str) -> pl.DataFrame:
        spaced = tokens.group_by(key, maintain_order=True).agg(pl.col("tok").str.join(" "))
        return spaced.select(key, pl.format(" {} ", "tok").alias(f"j{key}"))

    # a query without tokens has no phrase; a title without tokens joins as "  "
    found = (
        keys.join(joined(q_tok, "qk"), on="qk")
        .join(joined(t_tok, "tk"), on="tk", how="left")
        .with_columns(pl.col("jtk").fill_null("  "))
        .filter(pl.col("jtk").str.contains(pl.col("jqk"), literal=True))
    )
    out = np.zeros(keys.height)
    out[found["pair"].to_numpy()] = 1.0
    return out


def _fuzzy_tokens(
    keys: pl.DataFrame, q_set: pl.DataFrame, t_set: pl.DataFrame, n: int
) -> np.ndarray:
    """`features._fuzzy_token` of every pair: per query, one rapidfuzz cdist of its distinct
    tokens (sorted) against its candidates' joint vocabulary, then the best per (query token,
    title) and the mean over query tokens, with token ids and numpy instead of Python sets."""
    vocab = t_set.select("tok").unique().sort("tok").with_row_index("v")
    words = vocab["tok"].to_numpy()
    rows = keys.join(t_set.join(vocab, on="tok").select("tk", "v"), on="tk").sort("qk", "pair")
    qk, pair, v = (rows[c].to_numpy() for c in ("qk", "pair", "v"))
    query_tokens = dict(q_set.group_by("qk").agg(pl.col("tok").sort()).iter_rows())
    out = np.zeros(n)
    bounds = np.flatnonzero(np.r_[True, qk[1:] != qk[:-1], True]) if len(qk) else []
    for start, end in itertools.pairwise(bounds):
        tokens = query_tokens.get(qk[start])
        if not tokens:
            continue
        distinct, column = np.unique(v[start:end], return_inverse=True)
        matrix = process.cdist(
            tokens, words[distinct].tolist(), scorer=Levenshtein.normalized_similarity
        )
        pairs = pair[start:end]
        firsts = np.flatnonzero(np.r_[True, pairs[1:] != pairs[:-1]])
        best = np.maximum.reduceat(matrix[:, column], firsts, axis=1)
        out[pairs[firsts]] = best.astype(np.float64).mean(axis=0)
    return out
