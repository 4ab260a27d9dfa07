"""enrich: text normalisation of item and query text (the text every model indexes/queries)."""

import polars as pl

from shelflab.atomic import atomic_dir
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.layout import Layout
from shelflab.textnorm import normalize_frame


def main() -> None:
    root = find_root()
    cfg = load_params()["enrich"]
    layout = Layout(root)
    items = pl.read_parquet(layout.processed / "items.parquet")
    queries = pl.read_parquet(layout.processed / "queries.parquet")
    with atomic_dir(layout.enriched) as tmp:
        normalize_frame(items, cfg).write_parquet(tmp / "items.parquet")
        normalize_frame(queries, cfg).write_parquet(tmp / "queries.parquet")
    print(f"enrich: {items.height} items, {queries.height} queries normalised")


if __name__ == "__main__":
    run_stage("enrich", main)
