"""Semantic IDs of a catalog, shared by the models that use them (`sasrec_semantic`, `tiger`):
each item's text is embedded with the packaged MiniLM (or `text_model`, through the dense
model's on-disk cache) and an RQ-VAE (`models/rqvae.py`) turns the embeddings into `levels`
codes + a collision index. The params are the RQ-VAE's and the text encoder's."""

from __future__ import annotations

from typing import Any

import numpy as np

from shelflab.models.base import ModelContext, TrainData
from shelflab.models.params import Param
from shelflab.models.rqvae import SemanticIds

RQVAE_PARAMS: dict[str, Param] = {
    "text_model": Param("str", "all-MiniLM-L6-v2", help="encoder of the item text"),
    "text_max_seq_length": Param("int", 128, min=8),
    "levels": Param("int", 3, min=1),
    "codes": Param("int", 256, min=2, help="codebook size per level"),
    "latent": Param("int", 32, min=2),
    "rq_hidden": Param("int", 256, min=8, help="encoder widths: this and half of it"),
    "rq_beta": Param("float", 0.25, min=0.0),
    "rq_lr": Param("float", 1e-3, min=0.0),
    "rq_epochs": Param("int", 200, min=1),
    "rq_batch_size": Param("int", 1024, min=8),
}


def catalog_semantic_ids(
    train: TrainData, item_ids: list[str], p: dict[str, Any], ctx: ModelContext, name: str
) -> SemanticIds:
    """The semantic IDs of `item_ids` (in that order) from the catalog's `text`. `p` holds
    RQVAE_PARAMS, `seed` and `device`; `name` labels the text encoder's cache entry."""
    from shelflab.models.rqvae import train_rqvae

    emb = catalog_text_embeddings(train, item_ids, p, ctx, name)
    return train_rqvae(emb, {
        "levels": p["levels"], "codes": p["codes"], "latent": p["latent"],
        "hidden": [p["rq_hidden"], p["rq_hidden"] // 2], "beta": p["rq_beta"],
        "lr": p["rq_lr"], "epochs": p["rq_epochs"], "batch_size": p["rq_batch_size"],
        "seed": p["seed"],
    })  # fmt: skip


def rqvae_diagnostics(stats: dict[str, Any]) -> dict[str, float]:
    """The RQ-VAE's collisions and codebook usage as flat metrics."""
    out = {}
    for key in ("collision_rate", "distinct_code_tuples", "max_items_per_tuple"):
        if key in stats:
            out[f"rqvae_{key}"] = float(stats[key])
    for level, usage in enumerate(stats.get("codebook_usage", [])):
        out[f"rqvae_usage_level{level}"] = float(usage)
    return out


def catalog_texts(train: TrainData, item_ids: list[str]) -> list[str]:
    by_id = dict(zip(train.items["item_id"].cast(str).to_list(),
                     train.items["text"].fill_null("").to_list(), strict=True))  # fmt: skip
    # an item without text still needs a distinct input: its id
    return [by_id.get(i) or f"item {i}" for i in item_ids]


def catalog_text_embeddings(
    train: TrainData, item_ids: list[str], p: dict[str, Any], ctx: ModelContext, name: str
) -> np.ndarray:
    """MiniLM (`text_model`) embeddings of the items' text, in `item_ids` order."""
    return _embed(catalog_texts(train, item_ids), p, ctx, f"{name}-text")


def _embed(texts: list[str], p: dict[str, Any], ctx: ModelContext, name: str) -> np.ndarray:
    from shelflab.models.dense import DenseRetriever
    from shelflab.models.params import resolve_params

    spec = {"model": p["text_model"], "max_seq_length": p["text_max_seq_length"],
            "device": p["device"]}  # fmt: skip
    params = resolve_params(name, "dense", DenseRetriever.PARAMS, spec)
    return DenseRetriever(name, params, ctx).embed_items(texts)
