"""`bm25`: lexical retrieval with bm25s.

index_dir layout: `bm25s/` (bm25s.BM25.save: CSC score matrix, vocab, params),
`item_ids.parquet` (row i = document i), `shelflab-index.json` (family, params, n_items).

Run semantics: only items sharing at least one (analysed) term with the query are returned,
so a run may hold fewer than k rows; a query with no term in the vocabulary gets no rows.
(For bm25l/bm25+, every document gets a non-occurrence score; those non-matching documents
are dropped too.) k larger than the catalog is clamped. Ranks follow `add_rank`.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from os import cpu_count
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from shelflab.atomic import write_json, write_parquet
from shelflab.contract import ITEM_ID, QUERY_ID, SCORE, TEXT, add_rank, require_columns
from shelflab.errors import ConfigError, InputError
from shelflab.models.base import (
    INDEX_FILE,
    RUN_COLUMNS,
    Retriever,
    check_items,
    empty_run,
    read_index_meta,
)
from shelflab.models.params import Param

FEW_QUERIES = 16  # below this many queries, retrieval stays on the calling thread

if TYPE_CHECKING:
    import numpy as np


class BM25Retriever(Retriever):
    family: ClassVar[str] = "bm25"
    PARAMS: ClassVar[dict[str, Param]] = {
        "k1": Param("float", 1.5, min=0.0),
        "b": Param("float", 0.75, min=0.0, max=1.0),
        "delta": Param("float", 0.5, min=0.0, help="bm25l / bm25+ only"),
        "method": Param(
            "str", "lucene", choices=("lucene", "robertson", "atire", "bm25l", "bm25+")
        ),
        "stemmer": Param("str", "english", choices=("english", "none")),
        "stopwords": Param("str", "en", choices=("en", "none")),
        "lowercase": Param("bool", True),
        "n_threads": Param("int", -1, min=-1, help="retrieval threads; -1 = all CPUs"),
    }

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self._bm25: Any = None
        self._item_ids: np.ndarray | None = None
        self._stemmer: Any = None

    # --- analysis ---------------------------------------------------------------
    def _tokenize(self, texts: list[str]) -> list[list[str]]:
        bm25s = _bm25s()

        stemmer = None
        if self.params["stemmer"] == "english":
            if self._stemmer is None:  # made once: a query's tokenisation was half its making
                import Stemmer

                self._stemmer = Stemmer.Stemmer("english")
            stemmer = self._stemmer
        return bm25s.tokenize(
            texts,
            lower=self.params["lowercase"],
            stopwords="en" if self.params["stopwords"] == "en" else None,
            stemmer=stemmer,
            return_ids=False,
            show_progress=False,
        )

    # --- index@ -------------------------------------------------------------------
    def build_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        bm25s = _bm25s()

        items = check_items(items)
        if items.height == 0:
            raise InputError("empty catalog", path="items", expected="at least one item")
        tokens = self._tokenize(items[TEXT].to_list())
        p = self.params
        bm25 = bm25s.BM25(k1=p["k1"], b=p["b"], delta=p["delta"], method=p["method"])
        bm25.index(tokens, show_progress=False)  # seconds even on the full catalog
        index_dir = Path(index_dir)
        bm25.save(str(index_dir / "bm25s"), show_progress=False)
        write_parquet(items.select(ITEM_ID), index_dir / "item_ids.parquet")
        write_json(
            {
                "family": self.family,
                "name": self.name,
                "params": self.params,
                "n_items": items.height,
                "vocab_size": len(bm25.vocab_dict),
            },
            index_dir / INDEX_FILE,
        )
        self._bm25, self._item_ids = bm25, items[ITEM_ID].to_numpy()

    def open_index(self, index_dir: Path) -> None:
        bm25s = _bm25s()

        index_dir = Path(index_dir)
        meta = read_index_meta(index_dir, self.family)
        analysis = ("stemmer", "stopwords", "lowercase", "k1", "b", "delta", "method")
        changed = [k for k in analysis if meta["params"].get(k) != self.params[k]]
        if changed:
            raise ConfigError(
                f"model {self.name!r}: index at {index_dir} was built with different "
                f"{', '.join(changed)}; rebuild the index"
            )
        self._bm25 = bm25s.BM25.load(
            str(index_dir / "bm25s"),
            load_corpus=False,
            mmap=False,
            show_progress=False,
            verbosity=0,
        )
        self._item_ids = pl.read_parquet(index_dir / "item_ids.parquet")[ITEM_ID].to_numpy()

    # --- retrieve -------------------------------------------------------------------
    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        import numpy as np

        if self._bm25 is None or self._item_ids is None:
            raise ConfigError(f"model {self.name!r}: call build_index or open_index first")
        require_columns(queries, [QUERY_ID, TEXT], "queries")
        if k < 1 or queries.height == 0:
            return empty_run()
        vocab = self._bm25.vocab_dict
        qids = queries[QUERY_ID].cast(pl.String).to_list()
        tokens = self._tokenize(queries[TEXT].cast(pl.String).fill_null("").to_list())
        known = [[t for t in q if t in vocab and t != ""] for q in tokens]
        keep = [i for i, q in enumerate(known) if q]
        if not keep:
            return empty_run()
        kk = min(k, len(self._item_ids))
        threads = cpu_count() if self.params["n_threads"] == -1 else self.params["n_threads"]
        if len(keep) >= FEW_QUERIES and threads > 1:  # numpy and scipy release the GIL
            with ThreadPoolExecutor(threads) as pool:
                hits = list(pool.map(lambda i: self._top(known[i], kk), keep))
        else:  # a pool for a few queries costs more than it saves
            hits = [self._top(known[i], kk) for i in keep]
        out_q, out_d, out_s = [], [], []
        for qi, (d, scores) in zip(keep, hits, strict=True):
            out_q.extend([qids[qi]] * len(d))
            out_d.append(d)
            out_s.append(scores)
        if not out_q:
            return empty_run()
        run = pl.DataFrame(
            {
                QUERY_ID: pl.Series(out_q, dtype=pl.String),
                ITEM_ID: pl.Series(self._item_ids[np.concatenate(out_d)], dtype=pl.String),
                SCORE: pl.Series(np.concatenate(out_s).astype(np.float64)),
            }
        )
        return add_rank(run).select(RUN_COLUMNS)

    def _top(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(documents, scores) of the k best documents sharing a term with `tokens`: ties at
        the k-th score go to the larger item_id, as add_rank orders them, so a query's run
        is the same alone or in a batch. (bm25s's own top-k partitions the whole catalog
        from its far end: 2.5 ms of a 5 ms query.)"""
        import numpy as np

        bm25, ids = self._bm25, self._item_ids
        assert bm25 is not None and ids is not None
        indptr, indices = bm25.scores["indptr"], bm25.scores["indices"]
        terms = [bm25.vocab_dict[t] for t in set(tokens)]
        docs = np.unique(np.concatenate([indices[indptr[t] : indptr[t + 1]] for t in terms]))
        scores = bm25.get_scores(tokens)[docs]
        if len(docs) > k:
            kth = -np.partition(-scores, k - 1)[k - 1]
            above = np.flatnonzero(scores > kth)
            tied = np.flatnonzero(scores == kth)
            tied = tied[np.argsort(ids[docs[tied]])[::-1][: k - len(above)]]
            chosen = np.concatenate([above, tied])
            docs, scores = docs[chosen], scores[chosen]
        return docs, scores


@functools.cache  # once: setLevel clears every logger's cache, and _tokenize runs per query
def _bm25s() -> Any:
    """The bm25s module, with its logger back at WARNING: bm25s sets it to DEBUG on import, so
    once any library installs a root handler (some call logging.basicConfig) its "Building
    index from tokens" lines land in the stage output."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s
