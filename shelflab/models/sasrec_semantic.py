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
from shelflab.models.semantic_ids import RQVAE_PARAMS, catalog_semantic_ids, rqvae_diagnostics


class SemanticSASRecRetriever(SASRecRetriever):
    family: ClassVar[str] = "sasrec_semantic"
    PARAMS: ClassVar[dict[str, Param]] = {
        **SASREC_PARAMS,
        **RQVAE_PARAMS,
        "add_id_embedding": Param("bool", False),
    }

    def __init__(self, name: str, params: dict[str, Any], ctx: ModelContext) -> None:
        super().__init__(name, params, ctx)
        self.codes: np.ndarray | None = None
        self.rq_stats: dict[str, Any] = {}

    def build_net(self, train: TrainData | None):
        from shelflab.models.sasrec_net import SemanticSASRecNet

        p = self.params
        if train is not None:
            ids = catalog_semantic_ids(train, self.item_ids, p, self.ctx, self.family)
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
        return super().diagnostics(queries, k) | rqvae_diagnostics(self.rq_stats)
