"""What the rerankers of a first stage share (cross_encoder, xgb_ltr): the params that name the
candidate source, and an index that keeps the catalog's item text (both read it at query time).

params: `components` (whole model specs, YAML anchors, built inside the reranker's own
directories), `first_stage` (the component whose top `candidates` items are reranked),
`candidates`. Each family adds its own params to `reranker_params(...)`.
index_dir: the components' indexes (see `composite`) + `items.parquet` (item_id, text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from shelflab.atomic import write_parquet
from shelflab.errors import ConfigError
from shelflab.models.base import check_items
from shelflab.models.composite import Composite
from shelflab.models.params import Param

ITEMS_FILE = "items.parquet"


def reranker_params(
    *,
    candidates: int,
    first_stage: str = "hybrid",
    components_help: str = "component name -> model params; `first_stage` names the "
    "candidate source",
) -> dict[str, Param]:
    """The shared declarations; only the defaults that truly differ are arguments."""
    return {
        "components": Param("models", {first_stage: {"family": first_stage}}, help=components_help),
        "first_stage": Param("str", first_stage, help="the component that proposes candidates"),
        "candidates": Param("int", candidates, min=1, help="first-stage items reranked per query"),
    }


class Reranker(Composite):
    """A composite that reranks its `first_stage` component's top `candidates` items and reads
    item text from its own index (`self._items`, the catalog given to build_index)."""

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self._items: pl.DataFrame | None = None

    def build_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        super().build_index(check_items(items), index_dir)

    def build_own_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        write_parquet(items, Path(index_dir) / ITEMS_FILE)
        self._items = items

    def open_own_index(self, index_dir: Path) -> None:
        self._items = pl.read_parquet(index_dir / ITEMS_FILE)

    def _require_items(self) -> pl.DataFrame:
        if self._items is None:
            raise ConfigError(f"model {self.name!r}: call build_index or open_index first")
        return self._items
