"""Every next-item model on a full sequence dataset, outside DVC: the README table.

Loads the dataset as the next-item track's ingest stage does, applies leave-one-out, fits each
model of `tracks/nextitem/params.yaml` (its values, or `--set model.key=value`; SASRec's sample
epoch budget lifted, FULL_DATA) on the train sequences with early stopping on valid, and ranks
the WHOLE catalog for every valid and test user (history items excluded): Hit/NDCG@5/10/20 and
MRR with bootstrap CIs, the paired randomisation p-value of ndcg@10 against popularity, and the
training time. Examples:

    python bench/next_item.py --format s3rec --dir ../shared/data/amazon-s3rec-seq \\
        --sequences Beauty.txt.gz --out beauty.json
    python bench/next_item.py --format unisrec \\
        --dir ../shared/data/amazon-2018-scientific-unisrec --sequences Scientific --out sci.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

from model_specs import model_specs  # bench/model_specs.py
from split_scores import split_scores  # bench/split_scores.py

from shelflab.config import find_root, load_params
from shelflab.data_io.sequence_dataset import load_sequence_dataset
from shelflab.evaluation.significance import paired_test
from shelflab.models import ModelContext, TrainData, create
from shelflab.protocols.leave_one_out import leave_one_out
from shelflab.quarantine import Quarantine

METRICS = ["hit@5", "hit@10", "hit@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr"]
TRACK = Path(__file__).resolve().parents[1] / "tracks" / "nextitem"
FULL_DATA = {  # params.yaml holds the sample's budgets
    "sasrec": {"epochs": 200},
    "sasrec_semantic": {"epochs": 200},
    "two_tower": {"epochs": 50},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", required=True, choices=["s3rec", "unisrec", "amazon_reviews"])
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--sequences", required=True)
    ap.add_argument("--attributes", default=None)
    ap.add_argument("--datamaps", default=None)
    ap.add_argument("--models", nargs="+", default=None, help="default: every model in params")
    ap.add_argument("--set", nargs="*", default=[], help="model.key=value (YAML value)")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    # the trainers log one line per validation (epoch, loss, valid NDCG@10)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    params = load_params(TRACK / "params.yaml")
    names = args.models or list(params["models"])
    specs = model_specs(params["models"], names, FULL_DATA, args.set)
    for spec in specs.values():  # a composite's parts get the same full-data budgets
        if spec.get("components"):  # new dicts: YAML aliases share the parts with params
            spec["components"] = {
                n: {**part, **FULL_DATA.get(part["family"], {})}
                for n, part in spec["components"].items()
            }

    q = Quarantine()
    ds = load_sequence_dataset(
        args.format, args.dir, sequences=args.sequences, attributes=args.attributes,
        datamaps=args.datamaps, quarantine=q,
    )  # fmt: skip
    task = leave_one_out(ds.sequences, min_length=params["split"]["min_length"], quarantine=q)
    part = {s: task.part(s) for s in ("train", "valid", "test")}
    train = TrainData(ds.items, *part["train"], *part["valid"])
    info = {"dataset": ds.stats, "quarantined": q.counts(), "users": part["test"][0].height,
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}"}  # fmt: skip
    print("data:", json.dumps(info), flush=True)
    ctx = ModelContext(cache_dir=find_root() / ".cache" / "shelflab", show_progress=False)
    results: dict = {"data": info, "models": {}}
    per_query = {}
    for name, spec in specs.items():
        model = create(name, spec, ctx)
        start = time.perf_counter()
        model.fit(train)
        out: dict = {"fit_s": round(time.perf_counter() - start, 1), "params": model.params}
        if getattr(model, "history_log", None):
            out["training"] = model.history_log
        if getattr(model, "rq_stats", None):  # sasrec_semantic: codebook usage, collisions
            out["rqvae"] = model.rq_stats
        with tempfile.TemporaryDirectory() as tmp:
            model.build_index(ds.items, Path(tmp))
            for split in ("valid", "test"):
                start = time.perf_counter()
                run = model.retrieve(part[split][0], 100)
                out[f"{split}_rank_s"] = round(time.perf_counter() - start, 1)
                out[split], scores = split_scores(part[split][1], run, METRICS)
                if split == "test":
                    per_query[name] = scores
            model.close()
        results["models"][name] = out
        print(name, json.dumps({k: v for k, v in out.items() if k != "training"}), flush=True)
        _write(args.out, results)  # after every model: a run stopped midway keeps what it measured
    if "popularity" in per_query:
        for name in per_query:
            if name != "popularity":
                test = paired_test(per_query[name], per_query["popularity"], metric="ndcg@10")
                results["models"][name]["test_vs_popularity"] = test.to_dict()
    _write(args.out, results)


def _write(path: str | None, results: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
