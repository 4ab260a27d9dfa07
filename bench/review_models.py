"""Every review-track model on a full Amazon review dataset, outside DVC: the README table.

Builds the task exactly as the review track's ingest/split/enrich stages do (its params.yaml:
one query per distinct review, global time split, item text from the catalog + train-period
review keywords), fits each model of `tracks/reviews/params.yaml` (its values, not tuned; the
sample's training cap lifted, FULL_DATA) on the train period with early stopping on valid,
indexes the WHOLE catalog and scores valid and test: Recall@1/5/10/20/50/100, MRR, NDCG@10 with
bootstrap CIs, and the paired randomisation p-value of ndcg@10 against bm25. Example:

    python bench/review_models.py --reviews ../shared/data/amazon-2018-5core/Gift_Cards_5.json.gz \\
        --metadata ../shared/data/amazon-2018-5core/meta_Gift_Cards.json.gz --out gift.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl
from model_specs import model_specs  # bench/model_specs.py
from split_scores import split_scores  # bench/split_scores.py

from shelflab.config import find_root, load_params
from shelflab.data_io.amazon import load_review_dataset
from shelflab.evaluation.significance import paired_test
from shelflab.models import ModelContext, TrainData, create
from shelflab.pipeline.built import split_frame
from shelflab.protocols.time_split import time_split
from shelflab.quarantine import Quarantine
from shelflab.reviews.enrich import enrich_items
from shelflab.reviews.track import review_queries, with_query_ids
from shelflab.textnorm import normalize_frame

METRICS = ["recall@1", "recall@5", "recall@10", "recall@20", "recall@50", "recall@100", "mrr",
           "ndcg@10", "hit@10"]  # fmt: skip
TRACK = Path(__file__).resolve().parents[1] / "tracks" / "reviews"
# params.yaml holds the shipped sample's budgets; on full data these are lifted
FULL_DATA = {"biencoder_ft": {"max_train_pairs": None}}


def build_task(args: argparse.Namespace, params: dict) -> tuple[TrainData, dict, dict, dict]:
    q = Quarantine()
    ds = load_review_dataset(args.reviews, args.metadata, quarantine=q)
    reviews = with_query_ids(ds.reviews)
    data = params["data"]
    queries, qrels = review_queries(reviews, data["query_fields"], data["query_separator"])
    split = time_split(queries, tuple(params["split"]["fractions"]))
    items, stats = enrich_items(ds.items, reviews, split.splits, params["item_text"], root=TRACK)
    items = normalize_frame(items, params["enrich"]).select("item_id", "text")
    queries = normalize_frame(queries, params["enrich"]).select("query_id", "text")
    part = {s: split_frame(queries, split.splits, s) for s in ("train", "valid", "test")}
    judged = {s: split_frame(qrels, split.splits, s) for s in ("train", "valid", "test")}
    info = {
        "reviews": reviews.height,
        "quarantined": q.counts(),
        "queries": {s: part[s].height for s in part},
        "catalog_items": items.height,
        "mean_relevant_per_query": round(qrels.height / queries.height, 3),
        "split": split.summary()["cuts"],
        "enrich": stats,
    }
    train = TrainData(items, part["train"], judged["train"], part["valid"], judged["valid"])
    return train, part, judged, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reviews", required=True, type=Path)
    ap.add_argument("--metadata", type=Path, default=None)
    ap.add_argument("--models", nargs="+", default=None, help="default: every model in params")
    ap.add_argument("--set", nargs="*", default=[], help="model.key=value (YAML value)")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    params = load_params(TRACK / "params.yaml")
    names = args.models or list(params["models"])
    specs = model_specs(params["models"], names, FULL_DATA, args.set)

    train, part, judged, info = build_task(args, params)
    print("data:", json.dumps(info), flush=True)
    ctx = ModelContext(cache_dir=find_root() / ".cache" / "shelflab", show_progress=False)
    results: dict = {"data": info, "models": {}}
    per_query: dict[str, pl.DataFrame] = {}
    for name, spec in specs.items():
        model = create(name, spec, ctx)
        t = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t
        out: dict = {"fit_s": round(fit_s, 1)}
        with tempfile.TemporaryDirectory() as tmp:
            model.build_index(train.items, Path(tmp))
            for split in ("valid", "test"):
                run = model.retrieve(part[split], 100)
                out[split], scores = split_scores(judged[split], run, METRICS)
                if split == "test":
                    per_query[name] = scores
            model.close()
        results["models"][name] = out
        print(name, json.dumps(out), flush=True)
    if "bm25" in per_query:
        for name in per_query:
            if name != "bm25":
                test = paired_test(per_query[name], per_query["bm25"], metric="ndcg@10")
                results["models"][name]["test_vs_bm25"] = test.to_dict()
                print(f"{name} vs bm25: {test!r}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
