"""split: queries -> train / valid / test.

`split.method: query` (search track): seeded, by normalised query text, no text in two splits.
`split.method: time` (review track): global time split on the queries' `timestamp`.
"""

import polars as pl

from shelflab.atomic import write_json, write_parquet
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.layout import Layout
from shelflab.protocols.lockbox import set_aside_per_params
from shelflab.protocols.random_split import split_queries
from shelflab.protocols.time_split import time_split


def main() -> None:
    root = find_root()
    cfg = load_params()["split"]
    layout = Layout(root)
    source = layout.processed / "queries.parquet"
    queries = pl.read_parquet(source)
    summary: dict[str, object] = {}
    if cfg.get("method", "query") == "time":
        result = time_split(queries, tuple(cfg["fractions"]), source=str(source))
        splits, summary = result.splits, result.summary()
    else:
        splits = split_queries(queries, fractions=tuple(cfg["fractions"]), seed=cfg["seed"])
    splits = set_aside_per_params(splits, cfg)
    write_parquet(splits, layout.splits)
    counts = dict(splits.group_by("split").len().sort("split").iter_rows())
    write_json({"queries_per_split": counts, **summary}, root / "metrics" / "split.json")
    print(f"split: {counts}")


if __name__ == "__main__":
    run_stage("split", main)
