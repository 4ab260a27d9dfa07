"""Exact scores of a component model for arbitrary (query, item) pairs: the "scores" features
of a reranker, for candidates the component itself may not have ranked."""

from __future__ import annotations

import weakref
from typing import Any

import polars as pl

from shelflab.contract import ITEM_ID, QUERY_ID, TEXT
from shelflab.errors import ConfigError
from shelflab.models.base import Retriever
from shelflab.models.bm25 import BM25Retriever
from shelflab.models.dense import DenseRetriever


def pair_scores(model: Retriever, queries: pl.DataFrame, pairs: pl.DataFrame) -> list[float] | None:
    """Exact scores of `model` for every (query_id, item_id) pair, or None when the family has
    no cheap way to score arbitrary pairs."""
    import numpy as np

    if hasattr(model, "score_pairs"):
        return list(model.score_pairs(queries, pairs))
    qids = queries[QUERY_ID].to_list()
    texts = queries[TEXT].fill_null("").to_list()
    row_of_query = {q: i for i, q in enumerate(qids)}
    pq = [row_of_query[q] for q in pairs[QUERY_ID].to_list()]
    if isinstance(model, DenseRetriever):
        model._require_index()
        assert model._emb is not None and model._ids is not None
        row_of_item = _rows_of(model, model._ids)
        pi = np.asarray([row_of_item[i] for i in pairs[ITEM_ID].to_list()], dtype=np.int64)
        q = model.embed_queries(texts)
        return np.einsum("ij,ij->i", q[pq], model._emb[pi]).astype(np.float64).tolist()
    if isinstance(model, BM25Retriever):
        bm25, ids = model._bm25, model._item_ids
        if bm25 is None or ids is None:
            raise ConfigError(f"model {model.name!r}: call build_index or open_index first")
        row_of_item = _rows_of(model, ids)
        pi = np.asarray([row_of_item[i] for i in pairs[ITEM_ID].to_list()], dtype=np.int64)
        vocab = bm25.vocab_dict
        tokens = model._tokenize(texts)
        out = np.zeros(len(pq), dtype=np.float64)
        pq_arr = np.asarray(pq, dtype=np.int64)
        for qi in np.unique(pq_arr):
            known = [t for t in tokens[qi] if t in vocab and t != ""]
            if not known:
                continue
            mask = pq_arr == qi
            out[mask] = bm25.get_scores(known)[pi[mask]]
        return out.tolist()
    return None


_ROWS: weakref.WeakKeyDictionary[Retriever, tuple[Any, dict[str, int]]] = (
    weakref.WeakKeyDictionary()
)


def _rows_of(model: Retriever, ids: Any) -> dict[str, int]:
    """item_id -> row of the model's index arrays, built once per opened index (a dict over
    the whole catalog per call was half of a single query's reranking time)."""
    cached = _ROWS.get(model)
    if cached is None or cached[0] is not ids:
        cached = (ids, {str(i): r for r, i in enumerate(ids.tolist())})
        _ROWS[model] = cached
    return cached[1]
