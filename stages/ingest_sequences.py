"""ingest (next-item track): sequence files -> sequences, item text, and the leave-one-out
contract tables (queries with histories, qrels, splits), with the quarantine."""

import polars as pl

from shelflab.atomic import write_json, write_parquet
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.data_io.sequence_dataset import load_sequence_dataset
from shelflab.layout import Layout
from shelflab.pipeline.ingest import log_ingest
from shelflab.protocols.leave_one_out import leave_one_out
from shelflab.protocols.lockbox import set_aside_per_params
from shelflab.quarantine import Quarantine


def main() -> None:
    root = find_root()
    params = load_params()
    data, split = params["data"], params["split"]
    relabel_seed = data.get("relabel_seed", 0)
    layout = Layout(root)
    quarantine = Quarantine()
    ds = load_sequence_dataset(
        data["format"],
        root / data["dir"],
        sequences=data["sequences"],
        attributes=data.get("attributes"),
        datamaps=data.get("datamaps"),
        metadata=data.get("metadata"),
        k_core=data.get("k_core", 5),
        quarantine=quarantine,
        name=data["name"],
        relabel_seed=relabel_seed,
    )
    task = leave_one_out(
        ds.sequences,
        min_length=split["min_length"],
        quarantine=quarantine,
        source=data["sequences"],
    )
    quarantine.gate(
        task.queries["user_id"].n_unique(),
        unit="user sequences",
        source=root / data["dir"] / data["sequences"],
        data=data,
    )
    write_parquet(ds.sequences, layout.processed / "sequences.parquet")
    # the way back to the source's item ids (the identity when relabel_seed is null)
    id_map = ds.id_map
    if id_map is None:
        id_map = ds.items.select("item_id", pl.col("item_id").alias("source_item_id"))
    write_parquet(id_map, layout.item_ids)
    write_parquet(task.qrels, layout.qrels)
    splits = set_aside_per_params(task.splits, split)
    write_parquet(splits, layout.splits)
    write_parquet(ds.items, layout.enriched / "items.parquet")
    write_parquet(task.queries, layout.enriched / "queries.parquet")
    rejected = quarantine.write(layout.processed / "quarantine.parquet")
    lengths = ds.sequences["items"].list.len()
    users = task.queries["user_id"].n_unique()
    summary = {
        "users": users,
        "items": ds.items.height,
        "items_with_text": int((ds.items["text"] != "").sum()),
        "relabel_seed": relabel_seed,
        # review files: the qrels carry the rating of each next item (the MMoE's rating task)
        "rated": "ratings" in ds.sequences.columns,
        "interactions": int(lengths.sum()),
        "mean_sequence_length": round(float(lengths.mean() or 0.0), 3),
        "density": round(int(lengths.sum()) / max(1, users * ds.items.height), 6),
        "queries": dict(splits.group_by("split").len().sort("split").iter_rows()),
        "quarantined": sum(rejected.values()),
        "quarantined_by_reason": rejected,
    }
    write_json(summary, root / "metrics" / "ingest.json")
    log_ingest(root, params, summary, layout.processed / "quarantine.parquet")
    print(f"ingest: {summary}")


if __name__ == "__main__":
    run_stage("ingest", main)
