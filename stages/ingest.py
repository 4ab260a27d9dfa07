"""ingest: raw files of `data.format` in `data.dir` -> validated items / queries / qrels."""

from shelflab.atomic import write_json, write_parquet
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.data_io.loaders import load_search_dataset
from shelflab.layout import Layout
from shelflab.quarantine import Quarantine


def main() -> None:
    root = find_root()
    data = load_params()["data"]
    out = Layout(root).processed
    quarantine = Quarantine()
    ds = load_search_dataset(
        data["format"],
        root / data["dir"],
        grade_mapping=data.get("grade_mapping", "minus_one"),
        quarantine=quarantine,
    )
    quarantine.gate(ds.qrels.height, unit="judgments", source=root / data["dir"], data=data)
    write_parquet(ds.items, out / "items.parquet")
    write_parquet(ds.queries, out / "queries.parquet")
    write_parquet(ds.qrels, out / "qrels.parquet")
    rejected = quarantine.write(out / "quarantine.parquet")
    summary = {
        "items": ds.items.height,
        "queries": ds.queries.height,
        "qrels": ds.qrels.height,
        "quarantined": sum(rejected.values()),
        "quarantined_by_reason": rejected,
    }
    write_json(summary, root / "metrics" / "ingest.json")
    print(f"ingest: {summary}")


if __name__ == "__main__":
    run_stage("ingest", main)
