"""ingest (review track): review + catalog files -> reviews, items, queries, qrels, quarantine."""

from shelflab.atomic import write_json, write_parquet
from shelflab.cli.stage import run_stage
from shelflab.config import find_root, load_params
from shelflab.data_io.amazon import load_review_dataset
from shelflab.layout import Layout
from shelflab.pipeline.ingest import log_ingest
from shelflab.quarantine import Quarantine
from shelflab.reviews.track import review_queries, with_query_ids


def main() -> None:
    root = find_root()
    params = load_params()
    data = params["data"]
    out = Layout(root).processed
    quarantine = Quarantine()
    metadata = data.get("metadata")
    folder = root / data["dir"]
    ds = load_review_dataset(
        folder / data["reviews"],
        folder / metadata if metadata else None,
        quarantine=quarantine,
        name=data["name"],
    )
    quarantine.gate(ds.reviews.height, unit="reviews", source=folder / data["reviews"], data=data)
    reviews = with_query_ids(ds.reviews)
    queries, qrels = review_queries(
        reviews, data.get("query_fields", ["summary", "body"]), data.get("query_separator", ". ")
    )
    write_parquet(reviews, out / "reviews.parquet")
    write_parquet(ds.items, out / "items.parquet")
    write_parquet(queries, out / "queries.parquet")
    write_parquet(qrels, out / "qrels.parquet")
    rejected = quarantine.write(out / "quarantine.parquet")
    summary = {
        "reviews": ds.reviews.height,
        "queries": queries.height,
        "qrels": qrels.height,
        "items": ds.items.height,
        "reviewed_items": ds.reviews["item_id"].n_unique(),
        "users": ds.reviews["user_id"].n_unique(),
        "quarantined": sum(rejected.values()),
        "quarantined_by_reason": rejected,
    }
    write_json(summary, root / "metrics" / "ingest.json")
    log_ingest(root, params, summary, out / "quarantine.parquet")
    print(f"ingest: {summary}")


if __name__ == "__main__":
    run_stage("ingest", main)
