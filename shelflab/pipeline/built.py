"""Glue between the pipeline layout and the model zoo: used by the stages and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.contract import QUERY_ID
from shelflab.errors import UnknownModelError
from shelflab.layout import Layout

ENRICH_FILE = "text-normalization.json"


def model_context(layout: Layout, show_progress: bool = True):
    """Device "auto" (each model picks CUDA when present); progress lines (periodic lines, not
    terminal bars, so they read well in a captured log) unless turned off."""
    from shelflab.models.base import ModelContext

    return ModelContext(cache_dir=layout.cache_dir, show_progress=show_progress)


def build_times(layout: Layout, name: str) -> dict[str, float]:
    """Wall seconds of the tune@, train@ and index@ stages that built model `name` (from their
    timings files; stages that have not written one are left out)."""
    import json

    out = {}
    for stage in ("tune", "train", "index"):
        path = layout.timings(f"{stage}@{name}")
        if path.is_file():
            out[f"{stage}_s"] = float(json.loads(path.read_text())["wall_s"])
    return out


def split_frame(df: pl.DataFrame, splits: pl.DataFrame, split: str) -> pl.DataFrame:
    ids = splits.filter(pl.col("split") == split).select(QUERY_ID)
    return df.join(ids, on=QUERY_ID, how="semi")


def train_data(layout: Layout):
    from shelflab.models.base import TrainData

    items = pl.read_parquet(layout.enriched / "items.parquet")
    queries = pl.read_parquet(layout.enriched / "queries.parquet")
    qrels = pl.read_parquet(layout.qrels)
    splits = pl.read_parquet(layout.splits)
    return TrainData(
        items=items,
        train_queries=split_frame(queries, splits, "train"),
        train_qrels=split_frame(qrels, splits, "train"),
        valid_queries=split_frame(queries, splits, "valid"),
        valid_qrels=split_frame(qrels, splits, "valid"),
    )


def open_built_model(layout: Layout, name: str, show_progress: bool = True):
    """Open the model `name` as the last `dvc repro` built it."""
    from shelflab.models import open_model

    built = layout.built_models()
    if name not in built:
        raise UnknownModelError(name, built or ["(none built: run `dvc repro` first)"])
    ctx = model_context(layout, show_progress)
    return open_model(layout.model_dir(name), layout.index_dir(name), ctx)


def retrieve_in_source_ids(
    model: Any, queries: pl.DataFrame, k: int, id_map: pl.DataFrame | None
) -> pl.DataFrame:
    """`model.retrieve(queries, k)` for histories given in the source's item ids, the run's
    items back in them: the edge where a next-item pipeline on relabelled ids (`id_map`, see
    `data_io.relabel`) meets users. Without a map, a plain retrieve."""
    from shelflab.contract import HISTORY, ITEM_ID
    from shelflab.data_io.relabel import translate_ids

    if id_map is None:
        return model.retrieve(queries, k)
    inside = translate_ids(queries, HISTORY, id_map, to="internal")
    return translate_ids(model.retrieve(inside, k), ITEM_ID, id_map, to="source")


def save_text_normalization(index_dir: Path, cfg: dict[str, Any]) -> None:
    (index_dir / ENRICH_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True))


def load_text_normalization(index_dir: Path) -> dict[str, Any]:
    path = index_dir / ENRICH_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
