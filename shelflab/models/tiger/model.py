"""`tiger`: generative retrieval over semantic IDs (TIGER, Rajput et al., NeurIPS 2023).

Items get semantic IDs from their text (`models/semantic_ids.py`: MiniLM + RQ-VAE, `levels`
codes + the collision level). An encoder-decoder transformer (`net.py`) reads the history's
tuples and is trained with teacher forcing to emit the next item's tuple (cross-entropy per
level); every position of a training sequence is one example (its last `maxlen` items before
it). Early stopping on the valid NDCG@10 of the decoded ranking, keep-best weights, an optional
wall-clock budget (`max_train_minutes`).

Ranking: a beam search constrained to the trie of the catalog's tuples (`trie.py`) returns the
`beams` most likely items, best first. The rest of the catalog follows in the stated fallback
order: the model's probability of the item's first code (one decoding step the search already
made), then training popularity. So the harness ranks the whole catalog, and the first `beams`
ranks are the generated ones. The invalid-tuple rate of the decoded beams (0 under the
constraint) and of an unconstrained greedy decode on the valid split are logged.
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
from shelflab.models.semantic_ids import RQVAE_PARAMS, catalog_semantic_ids, rqvae_diagnostics
from shelflab.models.sequential import (
    SEQUENCE_PARAMS,
    SequentialRetriever,
    cut_padding,
    item_counts,
    left_padded,
    next_item_pairs,
)
from shelflab.models.training import (
    bucketed_batch_count,
    early_stopping_split,
    length_bucketed_batches,
    record_validation,
    start_training,
    valid_ndcg,
)
from shelflab.timing import Progress

log = logging.getLogger(__name__)

BEAM_BONUS = 1e3  # generated items score 1e3 + log-probability: above every fallback item
FALLBACK_FLOOR = -500.0  # lowest first-code log-probability a fallback score keeps
POPULARITY_TIE = 1e-6  # weight of the popularity fraction that orders items with one first code


class TigerRetriever(SequentialRetriever):
    family: ClassVar[str] = "tiger"
    PARAMS: ClassVar[dict[str, Param]] = {
        **SEQUENCE_PARAMS,
        **RQVAE_PARAMS,
        "maxlen": Param("int", 20, min=1, help="last history items the encoder reads"),
        "history_tokens": Param(
            "str",
            "code",
            choices=("code", "item"),
            help="encoder positions: one per code (TIGER) or per item",
        ),
        "dim": Param("int", 64, min=8),
        "layers": Param("int", 2, min=1, help="encoder layers = decoder layers"),
        "heads": Param("int", 2, min=1),
        "dropout": Param("float", 0.1, min=0.0, max=0.9),
        "lr": Param("float", 1e-3, min=0.0),
        "weight_decay": Param("float", 0.0, min=0.0),
        "train_batch_size": Param("int", 256, min=1),
        "epochs": Param("int", 20, min=1),
        "eval_every": Param("int", 1, min=1, help="epochs between valid evaluations"),
        "patience": Param("int", 3, min=0, help="evaluations without gain; 0: never stop"),
        "eval_max_queries": Param("int", 0, min=0, help="valid queries used for early stopping"),
        "max_train_minutes": Param("float", 0.0, min=0.0, help="wall-clock budget; 0: none"),
        "beams": Param("int", 20, min=1, help="beam width = generated items per query"),
        "decode_batch_size": Param("int", 128, min=1, help="queries per beam search"),
        "seed": Param("int", 42),
        "device": Param("str", "auto"),
        "threads": Param("int", 0, min=0, help="torch CPU threads; 0 = torch's default"),
    }

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self.net: Any = None
        self.trie: Any = None
        self.codes: np.ndarray | None = None  # (n_items, depth)
        self.popularity: np.ndarray | None = None  # fraction of the most popular item's count
        self.rq_stats: dict[str, Any] = {}
        self.history_log: list[dict[str, float]] = []
        self.fit_info: dict[str, Any] = {}
        self._beams = self._invalid = self._decoded = 0

    # --- training -----------------------------------------------------------------
    def fit_sequences(self, sequences: list[list[int]], train: TrainData) -> None:
        import torch

        p = self.params
        self.device = start_training(p, self.ctx)
        log.info("%s: training on %s", self.name, self.device)
        ids = catalog_semantic_ids(train, self.item_ids, p, self.ctx, self.family)
        self.codes, self.rq_stats = ids.codes, ids.stats
        counts = item_counts(sequences, len(self.item_ids))
        self.popularity = counts / max(1, counts.max(initial=0))
        self._build()
        history, target = next_item_pairs(sequences, p["maxlen"])
        lengths = (history != 0).sum(axis=1)
        opt = torch.optim.AdamW(self.net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        valid = early_stopping_split(train, p["eval_max_queries"], p["seed"])
        rng = np.random.default_rng(p["seed"])
        stopper = EarlyStopping.for_module(self.net, p["patience"])
        budget = p["max_train_minutes"] * 60
        per_epoch = bucketed_batch_count(len(target), p["train_batch_size"])
        progress = Progress(f"{self.name}: train on {self.device}", per_epoch * p["epochs"],
                            "steps", enabled=self.ctx.show_progress)  # fmt: skip
        start, epoch, out_of_time = time.perf_counter(), 0, False
        for epoch in range(1, p["epochs"] + 1):
            self.net.train()
            losses = []
            for idx in length_bucketed_batches(lengths, p["train_batch_size"], rng):
                losses.append(self._step(opt, history[idx], target[idx]))
                progress.update(1, epoch=epoch, loss=losses[-1])
                out_of_time = bool(budget) and time.perf_counter() - start > budget
                if out_of_time:
                    break
            last = epoch == p["epochs"] or out_of_time
            if valid is not None and (epoch % p["eval_every"] == 0 or last):
                score = valid_ndcg(self, *valid)
                if record_validation(self, epoch, losses, score, start, stopper, progress):
                    break
            if out_of_time:
                break
        progress.close()
        stopper.restore()
        self.net.eval()
        self.fit_info = {
            "device": self.device, "epochs_run": epoch, "examples_per_epoch": len(target),
            "train_seconds": round(time.perf_counter() - start, 1),
            "budget_minutes": p["max_train_minutes"], "budget_hit": out_of_time,
            "best_epoch": stopper.best_step,
            "unconstrained_invalid_rate": self._unconstrained_invalid_rate(valid),
        }  # fmt: skip

    def _build(self) -> None:
        import torch

        from shelflab.models.tiger.net import TigerNet
        from shelflab.models.tiger.trie import CodeTrie

        p = self.params
        self.trie = CodeTrie(self.codes, self.device)
        self.net = TigerNet(self.trie.sizes, p["maxlen"], p["dim"], p["layers"], p["heads"],
                            p["dropout"], per_item=p["history_tokens"] == "item",
                            ).to(self.device)  # fmt: skip
        # row 0: the padding item (code -1 at every level)
        padded = np.concatenate([np.full((1, self.trie.depth), -1), self.codes])
        self._item_codes = torch.as_tensor(padded, device=self.device)

    def _history_codes(self, rows: np.ndarray):
        """left_padded item rows (0 = padding) -> (B, L, depth) codes, cut to the longest."""
        import torch

        return self._item_codes[torch.as_tensor(cut_padding(rows), device=self.device)]

    def _step(self, opt, history: np.ndarray, target: np.ndarray) -> float:
        import torch
        import torch.nn.functional as F

        goal = self._item_codes[torch.as_tensor(target + 1, device=self.device)]
        logits = self.net(self._history_codes(history), goal)
        loss = sum(F.cross_entropy(lv, goal[:, i]) for i, lv in enumerate(logits)) / len(logits)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _unconstrained_invalid_rate(self, valid) -> float | None:
        """Share of greedy, unconstrained decodes of the valid histories that are no item's
        tuple: what the trie constraint prevents."""
        import torch

        if valid is None:
            return None
        self.net.eval()
        histories = [self.encode(h or []) for h in valid[0]["history"].to_list()]
        tuples = []
        with torch.no_grad():
            for start in range(0, len(histories), self.params["decode_batch_size"]):
                chunk = histories[start : start + self.params["decode_batch_size"]]
                memory, pad = self.net.encode(self._history_codes(self._rows(chunk)))
                prefix = memory.new_zeros(len(chunk), 0, dtype=torch.long)
                for _ in range(self.trie.depth):
                    nxt = self.net.next_logits(memory, pad, prefix).argmax(dim=1, keepdim=True)
                    prefix = torch.cat([prefix, nxt], dim=1)
                tuples.append(prefix.cpu().numpy())
        found = self.trie.is_item(np.concatenate(tuples)) if tuples else np.ones(0, bool)
        return round(float(1 - found.mean()), 6) if len(found) else 0.0

    def _rows(self, histories: list[list[int]]) -> np.ndarray:
        return left_padded(histories, self.params["maxlen"])

    # --- scoring ------------------------------------------------------------------
    def score(self, histories: list[list[int]]) -> np.ndarray:
        out = np.empty((len(histories), len(self.item_ids)))
        size = self.params["decode_batch_size"]
        for start in range(0, len(histories), size):
            out[start : start + size] = self._score_batch(histories[start : start + size])
        return out

    def _score_batch(self, histories: list[list[int]]) -> np.ndarray:
        import torch

        from shelflab.models.tiger.trie import decode

        with torch.no_grad():
            memory, pad = self.net.encode(self._history_codes(self._rows(histories)))
            beams = decode(
                lambda prefix: self.net.next_logits(memory, pad, prefix),
                self.trie, len(histories), self.params["beams"], self.device,
            )  # fmt: skip
        first = beams.first_logprob.cpu().numpy().astype(np.float64)
        scores = np.maximum(first[:, self.codes[:, 0]], FALLBACK_FLOOR)
        scores += POPULARITY_TIE * self.popularity[None]
        items, logprob = beams.items.cpu().numpy(), beams.logprob.cpu().numpy()
        found = items >= 0
        rows = np.nonzero(found)[0]
        scores[rows, items[found]] = BEAM_BONUS + logprob[found]
        self._beams += int(found.sum()) + beams.invalid
        self._invalid += beams.invalid
        self._decoded += len(histories)
        return scores

    def diagnostics(self, queries, k: int) -> dict[str, float]:
        out = super().diagnostics(queries, k) | rqvae_diagnostics(self.rq_stats)
        out["invalid_tuple_rate"] = self._invalid / max(1, self._beams)
        out["generated_per_query"] = self._beams / max(1, self._decoded)
        for key in ("unconstrained_invalid_rate", "train_seconds", "epochs_run",
                    "examples_per_epoch", "budget_minutes"):  # fmt: skip
            if self.fit_info.get(key) is not None:
                out[f"fit_{key}"] = float(self.fit_info[key])
        return out

    # --- persistence ----------------------------------------------------------------
    def save_state(self, model_dir: Path) -> None:
        import torch

        torch.save(self.net.state_dict(), model_dir / "tiger.pt")
        np.save(model_dir / "semantic_ids.npy", self.codes)
        np.save(model_dir / "popularity.npy", self.popularity)
        info = {"history": self.history_log, "fit": self.fit_info, "rqvae": self.rq_stats}
        (model_dir / "training.json").write_text(json.dumps(info, indent=2))

    def load_state(self, model_dir: Path) -> None:
        import torch

        self.device = resolve_device(self.params["device"], self.ctx.device)
        info = json.loads((model_dir / "training.json").read_text())
        self.history_log, self.fit_info, self.rq_stats = info["history"], info["fit"], info["rqvae"]
        self.codes = np.load(model_dir / "semantic_ids.npy")
        self.popularity = np.load(model_dir / "popularity.npy")
        self._build()
        state = torch.load(model_dir / "tiger.pt", map_location=self.device, weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval()
