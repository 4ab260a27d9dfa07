"""Base of the next-item models: a query is a history of item ids, every catalog item is scored
(full ranking), history items are masked out by default, the top k form the run.

Training data comes through the same `TrainData` as the search models, with `history` in place
of `text` (see `shelflab.protocols.leave_one_out`): a user's training sequence is its train
query's history + that query's relevant item. Subclasses implement `fit_sequences` and `score`.

index_dir layout: `item_ids.parquet` (column i of the score matrix = item i) and
`shelflab-index.json`. Items of a history that are not in the catalog are ignored (counted in
`diagnostics`); a query whose history holds no known item still gets the model's scores for an
empty history (popularity for most models).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from shelflab.atomic import write_json, write_parquet
from shelflab.contract import HISTORY, ITEM_ID, QUERY_ID, RANK, SCORE, add_rank, require_columns
from shelflab.errors import InputError
from shelflab.models.base import INDEX_FILE, Retriever, TrainData, read_index_meta
from shelflab.models.params import Param

SEQUENCE_PARAMS: dict[str, Param] = {
    "exclude_history": Param("bool", True, help="never recommend an item of the history"),
    "batch_size": Param("int", 2048, min=1, help="queries scored at once"),
}


def item_counts(sequences: list[list[int]], n_items: int) -> np.ndarray:
    """(n_items,) int64: how often each item index occurs in `sequences` (repeats count)."""
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int64)
    return np.bincount(flat, minlength=n_items)


def left_padded(sequences: list[list[int]], width: int) -> np.ndarray:
    """Each sequence's last `width` column indices + 1, right-aligned in a row of zeros (0 is
    the padding token of the neural models)."""
    out = np.zeros((len(sequences), width), dtype=np.int64)
    for r, s in enumerate(sequences):
        tail = s[-width:]
        if tail:
            out[r, -len(tail) :] = np.asarray(tail) + 1
    return out


def next_item_pairs(sequences: list[list[int]], maxlen: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (history, next item) of the sequences: the last `maxlen` items before position t
    as `left_padded` rows (item index + 1, 0 = padding) and item t's index."""
    pairs = [(s[max(0, t - maxlen) : t], s[t]) for s in sequences for t in range(1, len(s))]
    history = left_padded([h for h, _ in pairs], maxlen)
    return history, np.asarray([t for _, t in pairs], dtype=np.int64)


def cut_padding(rows: np.ndarray) -> np.ndarray:
    """`left_padded` rows without the columns that are padding in every row (at least one)."""
    width = max(1, int((rows != 0).sum(axis=1).max(initial=0)))
    return rows[:, -width:]


def training_sequences(train: TrainData) -> list[list[str]]:
    """Each training query's history + its relevant item (one sequence per user)."""
    require_columns(train.train_queries, [QUERY_ID, HISTORY], "train queries")
    positive = train.train_qrels.filter(pl.col("grade") > 0)
    target = positive.group_by(QUERY_ID, maintain_order=True).agg(pl.col(ITEM_ID))
    # in the order of the train queries: a trainer's batches must not depend on hash order
    joined = train.train_queries.join(target, on=QUERY_ID, how="inner", maintain_order="left")
    return [
        h + t for h, t in zip(joined[HISTORY].to_list(), joined[ITEM_ID].to_list(), strict=True)
    ]


class SequentialRetriever(Retriever):
    """Full-ranking next-item model over a fixed item vocabulary (the catalog)."""

    PARAMS: ClassVar[dict[str, Param]] = SEQUENCE_PARAMS
    query_input: ClassVar[str] = HISTORY

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self.item_ids: list[str] = []
        self.index_of: dict[str, int] = {}
        self._unknown = 0

    def _set_items(self, item_ids: list[str]) -> None:
        self.item_ids = list(item_ids)
        self.index_of = {item: i for i, item in enumerate(self.item_ids)}
        # tie order of the harness: equal scores rank by item_id descending
        self._preference = np.argsort(np.argsort(np.asarray(self.item_ids, dtype=object)))

    def encode(self, history: list[str]) -> list[int]:
        """Item ids -> column indices, unknown ids skipped (and counted)."""
        out = [self.index_of[i] for i in history if i in self.index_of]
        self._unknown += len(history) - len(out)
        return out

    # --- train@ ---------------------------------------------------------------
    def fit(self, train: TrainData) -> None:
        require_columns(train.items, [ITEM_ID], "items")
        self._set_items(train.items[ITEM_ID].cast(pl.String).to_list())
        sequences = [self.encode(s) for s in training_sequences(train)]
        self.fit_sequences([s for s in sequences if s], train)

    @abstractmethod
    def fit_sequences(self, sequences: list[list[int]], train: TrainData) -> None:
        """Learn from training sequences of column indices (oldest first)."""

    def save_extra(self, model_dir: Path) -> None:
        write_parquet(pl.DataFrame({ITEM_ID: self.item_ids}), Path(model_dir) / "vocab.parquet")
        self.save_state(Path(model_dir))

    def load_extra(self, model_dir: Path) -> None:
        self._set_items(pl.read_parquet(Path(model_dir) / "vocab.parquet")[ITEM_ID].to_list())
        self.load_state(Path(model_dir))

    @abstractmethod
    def save_state(self, model_dir: Path) -> None: ...

    @abstractmethod
    def load_state(self, model_dir: Path) -> None: ...

    # --- index@ ---------------------------------------------------------------
    def build_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        require_columns(items, [ITEM_ID], "items")
        catalog = items[ITEM_ID].cast(pl.String).to_list()
        if catalog != self.item_ids:
            raise InputError(
                f"catalog of {len(catalog)} items differs from the {len(self.item_ids)} the model "
                "was trained on",
                path="items",
                expected="the training catalog (next-item models score a fixed vocabulary)",
            )
        write_parquet(pl.DataFrame({ITEM_ID: catalog}), Path(index_dir) / "item_ids.parquet")
        write_json(
            {"family": self.family, "name": self.name, "n_items": len(catalog)},
            Path(index_dir) / INDEX_FILE,
        )

    def open_index(self, index_dir: Path) -> None:
        read_index_meta(index_dir, self.family)

    # --- evaluate@ / retrieve ---------------------------------------------------
    @abstractmethod
    def score(self, histories: list[list[int]]) -> np.ndarray:
        """(len(histories) x n_items) float scores; higher = more likely next."""

    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        require_columns(queries, [QUERY_ID, HISTORY], "queries")
        qids = queries[QUERY_ID].cast(pl.String).to_list()
        histories = [self.encode(h or []) for h in queries[HISTORY].to_list()]
        k = min(k, len(self.item_ids))
        frames = []
        size = self.params["batch_size"]
        for start in range(0, len(qids), size):
            batch = histories[start : start + size]
            scores = np.asarray(self.score(batch), dtype=np.float64)
            if not scores.flags.writeable:
                scores = scores.copy()  # e.g. a broadcast popularity row
            if self.params["exclude_history"]:
                mask_history(scores, batch)
            frames.append(
                _top_k(qids[start : start + size], scores, k, self.item_ids, self._preference)
            )
        if not frames:
            return pl.DataFrame(
                schema={QUERY_ID: pl.String, ITEM_ID: pl.String, SCORE: pl.Float64, RANK: pl.Int64}
            )
        return pl.concat(frames)

    def diagnostics(self, queries: pl.DataFrame, k: int) -> dict[str, float]:
        return {"unknown_history_items": float(self._unknown)}


def _top_k(
    qids: list[str], scores: np.ndarray, k: int, item_ids: list[str], preference: np.ndarray
) -> pl.DataFrame:
    """The k best columns per row (masked -inf items never returned). Equal scores at the cut are
    settled as the harness orders ties (item_id descending: higher `preference` first), so the
    run is the top k of the full ranking the harness would see."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1)
    for r in np.flatnonzero((scores >= kth[:, None]).sum(axis=1) > k):
        above = np.flatnonzero(scores[r] > kth[r])
        tied = np.flatnonzero(scores[r] == kth[r])
        tied = tied[np.argsort(-preference[tied], kind="stable")[: k - len(above)]]
        part[r] = np.concatenate([above, tied])
    vals = np.take_along_axis(scores, part, axis=1)
    keep = np.isfinite(vals)
    names = np.asarray(item_ids, dtype=object)
    run = pl.DataFrame(
        {
            QUERY_ID: np.repeat(np.asarray(qids, dtype=object), keep.sum(axis=1)),
            ITEM_ID: names[part[keep]],
            SCORE: vals[keep],
        },
        schema={QUERY_ID: pl.String, ITEM_ID: pl.String, SCORE: pl.Float64},
    )
    return add_rank(run)  # ranks as the harness and trec_eval read them (ties: item_id desc)


def mask_history(scores, histories: list[list[int]]) -> None:
    """Set each query's history items (column indices) to -inf in a (queries x items) score
    matrix, in place: they cannot be recommended again."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.fromiter((i for h in histories for i in h), dtype=np.int64, count=len(rows))
    scores[rows, cols] = -np.inf
