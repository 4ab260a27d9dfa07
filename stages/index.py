"""index@<model>: index the whole catalog with the trained model."""

import sys

import polars as pl

from shelflab.atomic import atomic_dir, write_parquet
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.data_io.relabel import SOURCE_IDS_FILE, read_id_map
from shelflab.layout import Layout
from shelflab.models import load
from shelflab.pipeline.built import model_context, save_text_normalization


def main(name: str) -> None:
    layout = Layout(find_root())
    enrich = load_params().get("enrich", {})  # none for next-item histories
    model = load(layout.model_dir(name), model_context(layout))
    items = pl.read_parquet(layout.enriched / "items.parquet")
    with atomic_dir(layout.index_dir(name)) as tmp:
        model.build_index(items, tmp)
        # the query side must be normalised exactly as the indexed text was
        save_text_normalization(tmp, enrich)
        id_map = read_id_map(layout.item_ids)
        if id_map is not None:  # next-item: serving answers in the source's item ids
            write_parquet(id_map, tmp / SOURCE_IDS_FILE)
    print(f"index@{name}: {items.height:,} items indexed")  # timings: run_stage's closing line


if __name__ == "__main__":
    run_stage(f"index@{sys.argv[1]}", main, sys.argv[1])
