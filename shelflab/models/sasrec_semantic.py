"""`sasrec_semantic`: SASRec over semantic IDs (TIGER-style item tokenisation, used as the item
representation of a SASRec, as in the semantic-ID seed): the items' text is embedded with the
packaged MiniLM (or `text_model`), an RQ-VAE (`models/rqvae.py`) turns each embedding into
`levels` codes + a collision index, and the SASRec's item vectors are sums of code embeddings
(`add_id_embedding` adds a per-item vector on top). Everything else, training, early stopping
and full ranking, is `sasrec`'s. The RQ-VAE's codebook usage and collisions are saved in
`training.json` and logged with the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shelflab.models.base import ModelContext, TrainData
from shelflab.models.params import Param
from shelflab.models.sasrec import SASREC_PARAMS, SASRecRetriever


class SemanticSASRecRetriever(SASRecRetriever):
    family: ClassVar[str] = "sasrec_semantic"
    PARAMS: ClassVar[dict[str, Param]] = {
        **SASREC_PARAMS,
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
        "add_id_embedding": Param("bool", False),
    }

    def __init__(self, name: str, params: dict[str, Any], ctx: ModelContext) -> None:
        super().__init__(name, params, ctx)
        self.codes: np.ndarray | None = None
        self.rq_stats: dict[str, Any] = {}

    def build_net(self, train: TrainData | None):
        from shelflab.models.rqvae import train_rqvae
        from shelflab.models.sasrec_net import SemanticSASRecNet

        p = self.params
        if train is not None:
            texts = _catalog_texts(train, self.item_ids)
            emb = _embed(texts, p, self.ctx)
            ids = train_rqvae(emb, {
                "levels": p["levels"], "codes": p["codes"], "latent": p["latent"],
                "hidden": [p["rq_hidden"], p["rq_hidden"] // 2], "beta": p["rq_beta"],
                "lr": p["rq_lr"], "epochs": p["rq_epochs"], "batch_size": p["rq_batch_size"],
                "seed": p["seed"],
            })  # fmt: skip
            self.codes, self.rq_stats = ids.codes, ids.stats
        return SemanticSASRecNet(
            self.codes, p["maxlen"], p["dim"], p["layers"], p["heads"], p["dropout"],
            add_id=p["add_id_embedding"],
        )  # fmt: skip

    def net_config(self) -> dict[str, Any]:
        return {"rqvae": self.rq_stats}

    def save_state(self, model_dir: Path) -> None:
        np.save(model_dir / "semantic_ids.npy", self.codes)
        super().save_state(model_dir)

    def restore_config(self, info: dict[str, Any], model_dir: Path) -> None:
        self.codes = np.load(model_dir / "semantic_ids.npy")
        self.rq_stats = info.get("rqvae", {})

    def diagnostics(self, queries, k: int) -> dict[str, float]:
        out = super().diagnostics(queries, k)
        for key in ("collision_rate", "distinct_code_tuples", "max_items_per_tuple"):
            if key in self.rq_stats:
                out[f"rqvae_{key}"] = float(self.rq_stats[key])
        for level, usage in enumerate(self.rq_stats.get("codebook_usage", [])):
            out[f"rqvae_usage_level{level}"] = float(usage)
        return out


def _catalog_texts(train: TrainData, item_ids: list[str]) -> list[str]:
    by_id = dict(zip(train.items["item_id"].cast(str).to_list(),
                     train.items["text"].fill_null("").to_list(), strict=True))  # fmt: skip
    # an item without text still needs a distinct input: its id
    return [by_id.get(i) or f"item {i}" for i in item_ids]


def _embed(texts: list[str], p: dict[str, Any], ctx: ModelContext) -> np.ndarray:
    """MiniLM embeddings of the item texts, through the dense model's on-disk cache."""
    from shelflab.models.dense import DenseRetriever
    from shelflab.models.params import resolve_params

    spec = {"model": p["text_model"], "max_seq_length": p["text_max_seq_length"],
            "device": p["device"]}  # fmt: skip
    name = "sasrec_semantic-text"
    params = resolve_params(name, "dense", DenseRetriever.PARAMS, spec)
    return DenseRetriever(name, params, ctx).embed_items(texts)
