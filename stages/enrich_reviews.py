"""enrich (review track): item text from the catalog + train-period review keywords; queries and
items normalised like the search track's."""

import polars as pl

from shelflab.atomic import atomic_dir, write_json
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.layout import Layout
from shelflab.reviews.enrich import enrich_items
from shelflab.textnorm import normalize_frame


def main() -> None:
    root = find_root()
    params = load_params()
    layout = Layout(root)
    reviews = pl.read_parquet(layout.processed / "reviews.parquet")
    items = pl.read_parquet(layout.processed / "items.parquet")
    queries = pl.read_parquet(layout.processed / "queries.parquet")
    splits = pl.read_parquet(layout.splits)
    items, stats = enrich_items(items, reviews, splits, params["item_text"], root=root)
    with atomic_dir(layout.enriched) as tmp:
        normalize_frame(items, params["enrich"]).write_parquet(tmp / "items.parquet")
        normalize_frame(queries, params["enrich"]).write_parquet(tmp / "queries.parquet")
    write_json(stats, root / "metrics" / "enrich.json")
    print(f"enrich: {stats}")


if __name__ == "__main__":
    run_stage("enrich", main)
