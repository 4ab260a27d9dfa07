"""`seq_rerank`: a next-item candidate model (e.g. `two_tower` over Chroma) whose top
`candidates` are re-ordered by a sequence model (`sasrec`, `itemknn`, …), as in the H&M seed's
retrieve-then-rank design. The reranker scores only the candidates (its full-catalog scores
gathered at their columns); `blend` mixes in the first stage's rank as a reciprocal-rank term
(0 = the reranker alone). Items outside the candidates are never returned, so the pipeline's
recall@candidates is the first stage's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl

from shelflab.contract import HISTORY, ITEM_ID, QUERY_ID, RANK, SCORE, add_rank
from shelflab.errors import ConfigError
from shelflab.models.composite import Composite, check_components
from shelflab.models.params import Param
from shelflab.models.sequential import SequentialRetriever


class SequenceRerankRetriever(Composite):
    family: ClassVar[str] = "seq_rerank"
    query_input: ClassVar[str] = HISTORY
    PARAMS: ClassVar[dict[str, Param]] = {
        "components": Param(
            "models",
            {"two_tower": {"family": "two_tower"}, "sasrec": {"family": "sasrec"}},
            help="the first stage and the reranker",
        ),
        "first_stage": Param("str", "two_tower"),
        "candidates": Param("int", 100, min=1),
        "blend": Param("float", 0.0, min=0.0, help="weight of 1 / (60 + first-stage rank)"),
    }

    @staticmethod
    def check_params(model: str, params: dict[str, Any]) -> None:
        check_components(model, params, "seq_rerank", first_stage=True)
        if len(params["components"]) != 2:
            raise ConfigError(f"model {model!r}: expected two components (first stage, reranker)")

    @property
    def first(self):
        return self.components[self.params["first_stage"]]

    @property
    def reranker(self) -> SequentialRetriever:
        name = next(n for n in self.components if n != self.params["first_stage"])
        model = self.components[name]
        if not isinstance(model, SequentialRetriever):
            raise ConfigError(f"model {self.name!r}: reranker {name!r} is not a next-item model")
        return model

    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        size = self.reranker.params["batch_size"]  # bounds the (queries x items) score matrix
        runs = [self._rerank(queries.slice(i, size), k) for i in range(0, queries.height, size)]
        schema = {QUERY_ID: pl.String, ITEM_ID: pl.String, SCORE: pl.Float64, RANK: pl.Int64}
        return pl.concat(runs) if runs else pl.DataFrame(schema=schema)

    def _rerank(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        depth = max(k, self.params["candidates"])
        cand = self.first.retrieve(queries, depth).select(QUERY_ID, ITEM_ID, RANK)
        rr = self.reranker
        scores = rr.score([rr.encode(h or []) for h in queries[HISTORY].to_list()])
        row_of = {q: i for i, q in enumerate(queries[QUERY_ID].cast(pl.String).to_list())}
        rows = np.fromiter((row_of[q] for q in cand[QUERY_ID].to_list()), np.int64, cand.height)
        cols = np.fromiter((rr.index_of.get(i, -1) for i in cand[ITEM_ID].to_list()), np.int64,
                           cand.height)  # fmt: skip
        value = np.where(cols >= 0, scores[rows, np.maximum(cols, 0)], -np.inf)
        value = value + self.params["blend"] / (60.0 + cand[RANK].to_numpy())
        run = cand.select(QUERY_ID, ITEM_ID).with_columns(pl.Series(SCORE, value, pl.Float64))
        run = run.filter(pl.col(SCORE).is_finite())
        return add_rank(run).filter(pl.col(RANK) <= k).cast({RANK: pl.Int64})
