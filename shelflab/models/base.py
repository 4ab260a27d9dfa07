"""One interface for every retriever/ranker in the zoo.

Life cycle, one DVC stage per step (library code here knows nothing of DVC):

    model = create(name, spec, ctx)            # spec = params.yaml `models.<name>`
    model.fit(train)                           # train@<name>: learn from training queries
    model.save(model_dir)                      #   (no-op learning for zero-shot models)
    model = load(model_dir, ctx)
    model.build_index(items, index_dir)        # index@<name>: catalog-side structures
    model = open_model(model_dir, index_dir, ctx)
    run = model.retrieve(queries, k)           # evaluate@<name>, `shelflab retrieve`

`model_dir` always holds `shelflab-model.json` ({"name", "family", "params"}) so a model can
be re-opened from its directory alone.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from shelflab.contract import (
    ITEM_ID,
    QUERY_ID,
    RANK,
    SCORE,
    TEXT,
    require_columns,
    require_unique,
)
from shelflab.errors import InputError

MODEL_FILE = "shelflab-model.json"
INDEX_FILE = "shelflab-index.json"
# Every family's run: these columns, in this order.
RUN_COLUMNS = [QUERY_ID, ITEM_ID, SCORE, RANK]


def empty_run() -> pl.DataFrame:
    return pl.DataFrame(
        schema={QUERY_ID: pl.String, ITEM_ID: pl.String, SCORE: pl.Float64, RANK: pl.Int64}
    )


QUERY_BLOCK = 500  # queries per call in by_query_blocks: one progress update each


def by_query_blocks(
    queries: pl.DataFrame,
    work: Callable[[pl.DataFrame], pl.DataFrame],
    label: str,
    *,
    enabled: bool = True,
    block: int = QUERY_BLOCK,
) -> pl.DataFrame:
    """`work` over consecutive blocks of `queries`, concatenated in order, with a progress line
    every few seconds (models score each query on its own, so blocks change no result)."""
    from shelflab.timing import Progress, batches

    if queries.height <= block:
        with Progress(label, queries.height, "queries", enabled=enabled) as progress:
            out = work(queries)
            progress.update(queries.height)
        return out
    parts = []
    with Progress(label, queries.height, "queries", enabled=enabled) as progress:
        for start, stop in batches(queries.height, block):
            parts.append(work(queries.slice(start, stop - start)))
            progress.update(stop - start)
    parts = [part for part in parts if part.height] or parts[:1]
    return pl.concat(parts, how="vertical_relaxed")


def check_items(items: pl.DataFrame, source: str = "items") -> pl.DataFrame:
    require_columns(items, [ITEM_ID, TEXT], source)
    items = items.select(
        pl.col(ITEM_ID).cast(pl.String), pl.col(TEXT).cast(pl.String).fill_null("")
    )
    require_unique(items, ITEM_ID, source)
    return items


def read_index_meta(index_dir: Path, family: str) -> dict[str, Any]:
    """The metadata a family's `build_index` wrote, or a clear error for a wrong directory."""
    path = Path(index_dir) / INDEX_FILE
    if not path.exists():
        raise InputError(
            f"no {family} index here",
            path=index_dir,
            expected=f"a directory written by build_index ({INDEX_FILE})",
        )
    return json.loads(path.read_text())


@dataclass
class TrainData:
    """What a trainable model may learn from: train/valid queries with qrels, and the catalog."""

    items: pl.DataFrame  # item_id, text
    train_queries: pl.DataFrame  # query_id, text
    train_qrels: pl.DataFrame  # query_id, item_id, grade
    valid_queries: pl.DataFrame | None = None
    valid_qrels: pl.DataFrame | None = None


@dataclass
class ModelContext:
    """Where a model finds things outside its own directories."""

    device: str = "auto"  # "auto": CUDA when present, else CPU; a model's own param wins
    cache_dir: Path = Path(".cache/shelflab")
    show_progress: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Retriever(ABC):
    """A fitted/loaded model that turns queries into a run."""

    family: ClassVar[str]
    # the query column `retrieve` reads: "text" (search, reviews) or "history" (next-item)
    query_input: ClassVar[str] = "text"

    def __init__(self, name: str, params: dict[str, Any], ctx: ModelContext) -> None:
        self.name = name
        self.params = dict(params)
        self.ctx = ctx

    # --- train@ ---------------------------------------------------------------
    def fit(self, train: TrainData) -> None:  # noqa: B027 - zero-shot models learn nothing
        """Learn from training data; zero-shot models keep the default no-op."""

    def save(self, model_dir: Path) -> None:
        """Write everything `load` needs into `model_dir` (which exists and is empty)."""
        (model_dir / MODEL_FILE).write_text(
            json.dumps(
                {"name": self.name, "family": self.family, "params": self.params},
                indent=2,
                sort_keys=True,
            )
        )
        self.save_extra(model_dir)

    def save_extra(self, model_dir: Path) -> None:  # noqa: B027 - optional hook
        """Families with learned weights write them here."""

    def load_extra(self, model_dir: Path) -> None:  # noqa: B027 - optional hook
        """Families with learned weights read them here."""

    # --- index@ ---------------------------------------------------------------
    @abstractmethod
    def build_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        """Index the whole catalog (`item_id`, `text`) into `index_dir` (exists, empty)."""

    @abstractmethod
    def open_index(self, index_dir: Path) -> None:
        """Load what `build_index` wrote, ready for `retrieve`."""

    # --- evaluate@ / retrieve ---------------------------------------------------
    @abstractmethod
    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        """queries (`query_id`, `text`) -> run (`query_id`, `item_id`, `score`, `rank`), at most
        k rows per query, rank 1 = best, scores descending within a query."""

    def diagnostics(self, queries: pl.DataFrame, k: int) -> dict[str, float]:
        """Model-specific health figures logged beside the metrics (e.g. an ANN index's recall
        against exact search); none by default."""
        return {}

    def training_curve(self) -> dict[str, dict[int, float]]:
        """Per-epoch series of an iterative trainer (series name -> {epoch: value}), logged to
        MLflow as steps: each entry of `history_log` (loss, valid NDCG@10, seconds), if any."""
        curve: dict[str, dict[int, float]] = {}
        for entry in getattr(self, "history_log", None) or []:
            for key, value in entry.items():
                if key != "epoch" and isinstance(value, int | float):
                    name = "fit_" + key.replace("@", "_at_")  # MLflow keys take no '@'
                    curve.setdefault(name, {})[int(entry["epoch"])] = float(value)
        return curve

    @staticmethod
    def unavailable_reason(params: dict[str, Any]) -> str | None:
        """Why this model cannot run on this machine (e.g. no LLM endpoint), else None: the
        evaluate stage then says so and records the model as skipped."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (temp copies, clients); the model cannot retrieve afterwards."""
