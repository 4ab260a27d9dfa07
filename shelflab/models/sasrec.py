"""`sasrec`: SASRec (Kang & McAuley, ICDM 2018) trained on the training sequences.

Training: every position of a training sequence (its last `maxlen` + 1 items) predicts the next
item. `loss: ce` (default) is the cross-entropy over the whole catalog, which reproductions
found far stronger than the paper's loss under full ranking (Klenitskiy & Vasilev, RecSys
2023); `loss: bce` is the paper's: the next item against `negatives` uniformly sampled items per
position. Only real (non-padding) positions are scored, so the cost of the full softmax grows
with the number of interactions, not batch x maxlen.
Early stopping: every `eval_every` epochs (and after the last) the model ranks the valid queries
(full ranking, history masked, exactly as evaluated) and keeps the weights with the best valid
NDCG@10; it stops after `patience` evaluations without a gain (0: never; the rule of
`shelflab.models.early_stopping`). Progress is reported to the tuner's pruning hook. CUDA when
present (`device`), else CPU.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shelflab.models.base import TrainData
from shelflab.models.device import resolve_device
from shelflab.models.early_stopping import EarlyStopping
from shelflab.models.params import Param
from shelflab.models.sequential import (
    SEQUENCE_PARAMS,
    SequentialRetriever,
    cut_padding,
    left_padded,
)
from shelflab.models.training import (
    bucketed_batch_count,
    early_stopping_split,
    length_bucketed_batches,
    report_valid,
    start_training,
    valid_ndcg,
)
from shelflab.timing import Progress

log = logging.getLogger(__name__)

SASREC_PARAMS: dict[str, Param] = {
    **SEQUENCE_PARAMS,
    "maxlen": Param("int", 50, min=2, help="last items the model reads"),
    "dim": Param("int", 64, min=8),
    "layers": Param("int", 2, min=1),
    "heads": Param("int", 1, min=1),
    "dropout": Param("float", 0.3, min=0.0, max=0.9),
    "loss": Param("str", "ce", choices=("ce", "bce")),
    "negatives": Param("int", 1, min=1, help="bce: sampled negatives per position"),
    "lr": Param("float", 1e-3, min=0.0),
    "weight_decay": Param("float", 0.0, min=0.0),
    "train_batch_size": Param("int", 128, min=1),
    "epochs": Param("int", 200, min=1),
    "eval_every": Param("int", 2, min=1, help="epochs between valid evaluations"),
    "patience": Param(
        "int", 5, min=0, help="evaluations without valid ndcg@10 gain before stopping; 0: never"
    ),
    "eval_max_queries": Param("int", 0, min=0, help="valid queries used for early stopping"),
    "seed": Param("int", 42),
    "device": Param("str", "auto"),
    "threads": Param("int", 0, min=0, help="torch CPU threads; 0 = torch's default"),
}


class SASRecRetriever(SequentialRetriever):
    family: ClassVar[str] = "sasrec"
    PARAMS: ClassVar[dict[str, Param]] = SASREC_PARAMS

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self.net: Any = None
        self.history_log: list[dict[str, float]] = []

    # --- the network; sasrec_semantic overrides these two ------------------------
    def build_net(self, train: TrainData | None):
        from shelflab.models.sasrec_net import SASRecNet

        p = self.params
        return SASRecNet(
            len(self.item_ids), p["maxlen"], p["dim"], p["layers"], p["heads"], p["dropout"]
        )

    def net_config(self) -> dict[str, Any]:
        return {}

    # --- training -----------------------------------------------------------------
    def fit_sequences(self, sequences: list[list[int]], train: TrainData) -> None:
        import torch

        p = self.params
        self.device = start_training(p, self.ctx)
        self.net = self.build_net(train).to(self.device)
        opt = torch.optim.Adam(self.net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        data = _windows([s for s in sequences if len(s) >= 2], p["maxlen"])
        lengths = (data != 0).sum(axis=1)
        valid = early_stopping_split(train, p["eval_max_queries"], p["seed"])
        rng = np.random.default_rng(p["seed"])
        stopper = EarlyStopping.for_module(self.net, p["patience"])
        start = time.perf_counter()
        per_epoch = bucketed_batch_count(len(data), p["train_batch_size"])
        progress = Progress(
            f"{self.name}: train", per_epoch * p["epochs"], "steps", enabled=self.ctx.show_progress
        )
        for epoch in range(1, p["epochs"] + 1):
            self.net.train()
            losses = []
            # windows of similar length share a batch, cut to its longest (most Amazon
            # histories are far shorter than maxlen)
            for idx in length_bucketed_batches(lengths, p["train_batch_size"], rng):
                losses.append(self._step(opt, cut_padding(data[idx]), rng))
                progress.update(1, epoch=epoch, loss=losses[-1])
            if valid is None or (epoch % p["eval_every"] and epoch != p["epochs"]):
                continue
            score = valid_ndcg(self, *valid)
            self.history_log.append(
                {"epoch": epoch, "loss": float(np.mean(losses)), "valid_ndcg@10": score,
                 "seconds": round(time.perf_counter() - start, 1)}
            )  # fmt: skip
            log.info("sasrec epoch %d: loss %.4f valid ndcg@10 %.4f", epoch, losses[-1], score)
            report_valid(self.ctx, epoch, score)
            progress.fields["valid_ndcg@10"] = score
            if stopper.update(epoch, score):
                break
        progress.close()
        stopper.restore()  # the best valid weights (no valid split: the last ones)
        self.net.eval()

    def _step(self, opt, batch: np.ndarray, rng: np.random.Generator) -> float:
        import torch
        import torch.nn.functional as F

        seq = torch.as_tensor(batch[:, :-1], device=self.device)
        target = torch.as_tensor(batch[:, 1:], device=self.device)
        real = target > 0
        hidden = self.net.encode(seq)[real]  # (positions, dim)
        pos = target[real] - 1  # catalog index
        if self.params["loss"] == "ce":
            loss = F.cross_entropy(self.net.logits(hidden), pos)
        else:
            table = self.net.item_embeddings()[1:]
            neg_idx = rng.integers(0, len(self.item_ids), (len(pos), self.params["negatives"]))
            neg = torch.as_tensor(neg_idx, device=self.device)
            pos_logit = (hidden * table[pos]).sum(-1)
            neg_logit = (hidden[:, None] * table[neg]).sum(-1)
            loss = F.binary_cross_entropy_with_logits(
                pos_logit, torch.ones_like(pos_logit)
            ) + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    # --- scoring ------------------------------------------------------------------
    def score(self, histories: list[list[int]]) -> np.ndarray:
        import torch

        seq = cut_padding(left_padded(histories, self.params["maxlen"]))
        with torch.no_grad():
            x = torch.as_tensor(seq, device=self.device)
            return self.net.logits(self.net.last_hidden(x)).float().cpu().numpy()

    # --- persistence ----------------------------------------------------------------
    def save_state(self, model_dir: Path) -> None:
        import torch

        torch.save(self.net.state_dict(), model_dir / "sasrec.pt")
        (model_dir / "training.json").write_text(
            json.dumps({"history": self.history_log, **self.net_config()}, indent=2)
        )

    def load_state(self, model_dir: Path) -> None:
        import torch

        self.device = resolve_device(self.params["device"], self.ctx.device)
        info = json.loads((model_dir / "training.json").read_text())
        self.history_log = info.get("history", [])
        self.restore_config(info, model_dir)
        self.net = self.build_net(None)
        state = torch.load(model_dir / "sasrec.pt", map_location=self.device, weights_only=True)
        self.net.load_state_dict(state)
        self.net.to(self.device).eval()

    def restore_config(self, info: dict[str, Any], model_dir: Path) -> None:
        """Hook for subclasses whose network needs more than the params (e.g. codes)."""


def _windows(sequences: list[list[int]], maxlen: int) -> np.ndarray:
    """Each sequence's last maxlen + 1 items (inputs and next-item targets, shifted by one)."""
    return left_padded(sequences, maxlen + 1)
