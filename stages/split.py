"""split: queries -> train / valid / test by query (seeded; no query text in two splits)."""

import polars as pl

from shelflab.atomic import write_json, write_parquet
from shelflab.config import find_root, load_params
from shelflab.layout import Layout
from shelflab.split import split_queries


def main() -> None:
    root = find_root()
    cfg = load_params()["split"]
    layout = Layout(root)
    queries = pl.read_parquet(layout.processed / "queries.parquet")
    splits = split_queries(queries, fractions=tuple(cfg["fractions"]), seed=cfg["seed"])
    write_parquet(splits, layout.splits)
    counts = dict(splits.group_by("split").len().sort("split").iter_rows())
    write_json({"queries_per_split": counts}, root / "metrics" / "split.json")
    print(f"split: {counts}")


if __name__ == "__main__":
    main()
