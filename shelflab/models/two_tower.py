"""`two_tower`: a candidate model as in the H&M seed. The item tower maps an item's ID embedding +
a projection of its frozen MiniLM text embedding (`use_text`) to a vector; the user tower reads
the item-tower vectors of the last `maxlen` history items (a position-weighted mean and the last
item, through an MLP). Trained with the in-batch sampled softmax (temperature `temperature`,
logQ-corrected: each in-batch logit minus the log of the item's training frequency) on every
(prefix → next item) pair of the training sequences; early stopping on valid NDCG@10 every
`eval_every` epochs, keeping the best weights (`patience`: see `shelflab.models.early_stopping`).

Retrieval: the item vectors are L2-normalised and indexed in a Chroma collection (cosine,
`search: chroma`, the default) that answers each user vector with its `candidates` nearest items
(history items removed afterwards, so a user still gets k); `search: exact` ranks the whole
catalog by the same cosine instead (the reference the Chroma recall is measured against in
`diagnostics`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from shelflab.atomic import write_json, write_parquet
from shelflab.contract import HISTORY, ITEM_ID, QUERY_ID, SCORE, add_rank, require_columns
from shelflab.models.base import INDEX_FILE, ModelContext, TrainData
from shelflab.models.device import resolve_device
from shelflab.models.early_stopping import EarlyStopping
from shelflab.models.params import Param
from shelflab.models.sequential import (
    SEQUENCE_PARAMS,
    SequentialRetriever,
    left_padded,
    next_item_pairs,
)
from shelflab.models.training import (
    early_stopping_split,
    record_validation,
    score_run,
    start_training,
)
from shelflab.timing import Progress

log = logging.getLogger(__name__)


class TwoTowerRetriever(SequentialRetriever):
    family: ClassVar[str] = "two_tower"
    PARAMS: ClassVar[dict[str, Param]] = {
        **SEQUENCE_PARAMS,
        "dim": Param("int", 64, min=8),
        "maxlen": Param("int", 20, min=1),
        "use_text": Param("bool", True, help="add the projected MiniLM text embedding"),
        "text_model": Param("str", "all-MiniLM-L6-v2"),
        "text_max_seq_length": Param("int", 128, min=8),
        "dropout": Param("float", 0.1, min=0.0, max=0.9),
        "temperature": Param("float", 0.05, min=1e-4),
        "logq_correction": Param(
            "bool", True, help="subtract log(item frequency) from in-batch logits (Yi et al. 2019)"
        ),
        "lr": Param("float", 1e-3, min=0.0),
        "weight_decay": Param("float", 0.0, min=0.0),
        "train_batch_size": Param("int", 512, min=2),
        "epochs": Param("int", 30, min=1),
        "eval_every": Param("int", 1, min=1),
        "patience": Param(
            "int", 3, min=0, help="evaluations without valid ndcg@10 gain before stopping; 0: never"
        ),
        "search": Param("str", "chroma", choices=("chroma", "exact")),
        "candidates": Param("int", 200, min=1, help="Chroma depth before history masking"),
        "ef_search": Param("int", 200, min=1),
        "seed": Param("int", 42),
        "device": Param("str", "auto"),
    }

    def __init__(self, name: str, params: dict[str, Any], ctx: ModelContext) -> None:
        super().__init__(name, params, ctx)
        self.net: Any = None
        self.text_emb: np.ndarray | None = None
        self.history_log: list[dict[str, float]] = []
        self._chroma: Any = None
        self._item_vecs: np.ndarray | None = None
        self._items_t: Any = None  # the item tower's output for the current weights

    # --- training -------------------------------------------------------------------
    def fit_sequences(self, sequences: list[list[int]], train: TrainData) -> None:
        import torch

        p = self.params
        self.device = start_training(p, self.ctx)
        if p["use_text"]:
            from shelflab.models.semantic_ids import catalog_text_embeddings

            self.text_emb = catalog_text_embeddings(train, self.item_ids, p, self.ctx, self.name)
        self.net = self._build().to(self.device)
        hist, target = next_item_pairs(sequences, p["maxlen"])
        target = target + 1  # item rows: 0 is the padding row of the item table
        # in-batch negatives are drawn in proportion to popularity: without the logQ correction
        # the softmax learns to push popular items down (on the Beauty sample the untuned model
        # fell below popularity)
        freq = np.bincount(target, minlength=len(self.item_ids) + 1) / len(target)
        self._logq = torch.as_tensor(np.log(np.maximum(freq, 1e-12)), dtype=torch.float32,
                                     device=self.device)  # fmt: skip
        opt = torch.optim.Adam(self.net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        rng = np.random.default_rng(p["seed"])
        valid = early_stopping_split(train, 0, p["seed"])  # every valid user
        stopper = EarlyStopping.for_module(self.net, p["patience"])
        start = time.perf_counter()
        per_epoch = -(-len(target) // p["train_batch_size"])
        progress = Progress(
            f"{self.name}: train", per_epoch * p["epochs"], "steps", enabled=self.ctx.show_progress
        )
        for epoch in range(1, p["epochs"] + 1):
            self.net.train()
            order = rng.permutation(len(target))
            losses = []
            for i in range(0, len(order), p["train_batch_size"]):
                idx = order[i : i + p["train_batch_size"]]
                losses.append(self._step(opt, hist[idx], target[idx]))
                progress.update(1, epoch=epoch, loss=losses[-1])
            self._item_vecs = self._items_t = None
            if valid is None or (epoch % p["eval_every"] and epoch != p["epochs"]):
                continue
            score = score_run(self._exact_run(valid[0], 10), valid[1], "ndcg@10")
            if record_validation(self, epoch, losses, score, start, stopper, progress):
                break
        progress.close()
        stopper.restore()  # the best valid weights (no valid split: the last ones)
        self.net.eval()
        self._item_vecs = self._items_t = None

    def _build(self):
        from shelflab.models.two_tower_net import TwoTowerNet

        p = self.params
        return TwoTowerNet(len(self.item_ids), p["dim"], self.text_emb, p["dropout"])

    def _step(self, opt, hist: np.ndarray, target: np.ndarray) -> float:
        import torch
        import torch.nn.functional as F

        h = torch.as_tensor(hist, device=self.device)
        t = torch.as_tensor(target, device=self.device)
        items = self.net.items()  # (n + 1, dim), normalised
        users = self.net.users(h, items)
        logits = users @ items[t].T / self.params["temperature"]
        if self.params["logq_correction"]:
            logits = logits - self._logq[t][None, :]
        # the same item twice in a batch is not a negative of itself
        same = t[None, :] == t[:, None]
        logits = logits.masked_fill(same & ~torch.eye(len(t), dtype=torch.bool, device=t.device),
                                    float("-inf"))  # fmt: skip
        loss = F.cross_entropy(logits, torch.arange(len(t), device=t.device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    # --- vectors --------------------------------------------------------------------
    def _item_table(self):
        """The item tower's (n_items + 1, dim) output, once per set of weights: a request
        would otherwise project every item's text again (most of its time)."""
        import torch

        if self._items_t is None:
            with torch.no_grad():
                self._items_t = self.net.items()
        return self._items_t

    def item_vectors(self) -> np.ndarray:
        """(n_items, dim) L2-normalised item-tower vectors."""
        if self._item_vecs is None:
            self._item_vecs = self._item_table()[1:].float().cpu().numpy()
        return self._item_vecs

    def user_vectors(self, histories: list[list[int]]) -> np.ndarray:
        import torch

        seq = left_padded(histories, self.params["maxlen"])
        with torch.no_grad():
            items = self._item_table()
            return self.net.users(torch.as_tensor(seq, device=self.device), items).cpu().numpy()

    def score(self, histories: list[list[int]]) -> np.ndarray:
        return self.user_vectors(histories) @ self.item_vectors().T

    def _exact_run(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        return super().retrieve(queries, k)

    # --- persistence and index --------------------------------------------------------
    def save_state(self, model_dir: Path) -> None:
        import torch

        torch.save(self.net.state_dict(), model_dir / "two_tower.pt")
        if self.text_emb is not None:
            np.save(model_dir / "text_embeddings.npy", self.text_emb)
        (model_dir / "training.json").write_text(json.dumps({"history": self.history_log}))

    def load_state(self, model_dir: Path) -> None:
        import torch

        self.device = resolve_device(self.params["device"], self.ctx.device)
        text = model_dir / "text_embeddings.npy"
        self.text_emb = np.load(text) if text.exists() else None
        self.history_log = json.loads((model_dir / "training.json").read_text())["history"]
        self.net = self._build()
        state = torch.load(model_dir / "two_tower.pt", map_location=self.device, weights_only=True)
        self.net.load_state_dict(state)
        self.net.to(self.device).eval()

    def build_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        super().build_index(items, index_dir)
        if self.params["search"] == "chroma":
            from shelflab.models.chroma_index import build_chroma

            hnsw = build_chroma(
                Path(index_dir) / "chroma", self.item_ids, self.item_vectors(),
                ef_search=self.params["ef_search"], show_progress=self.ctx.show_progress,
            )  # fmt: skip
            meta = json.loads((Path(index_dir) / INDEX_FILE).read_text())
            write_json({**meta, "hnsw": hnsw}, Path(index_dir) / INDEX_FILE)
        write_parquet(pl.DataFrame({ITEM_ID: self.item_ids}), Path(index_dir) / "item_ids.parquet")

    def open_index(self, index_dir: Path) -> None:
        super().open_index(index_dir)
        if self.params["search"] == "chroma":
            from shelflab.models.chroma_index import ChromaIndex

            self._chroma = ChromaIndex(Path(index_dir) / "chroma")

    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        if self._chroma is None:
            return self._exact_run(queries, k)
        require_columns(queries, [QUERY_ID, HISTORY], "queries")
        qids = queries[QUERY_ID].cast(pl.String).to_list()
        histories = [h or [] for h in queries[HISTORY].to_list()]
        vecs = self.user_vectors([self.encode(h) for h in histories])
        depth = max(k, self.params["candidates"])
        ids, sims = self._chroma.search(vecs, depth)
        rows: list[tuple[str, str, float]] = []
        exclude = self.params["exclude_history"]
        for qid, hist, found, sim in zip(qids, histories, ids, sims, strict=True):
            seen = set(hist) if exclude else set()
            kept = [(i, s) for i, s in zip(found, sim, strict=True) if i not in seen][:k]
            rows.extend((qid, i, float(s)) for i, s in kept)
        schema = {QUERY_ID: pl.String, ITEM_ID: pl.String, SCORE: pl.Float64}
        return add_rank(pl.DataFrame(rows, schema=schema, orient="row"))

    def diagnostics(self, queries: pl.DataFrame, k: int) -> dict[str, float]:
        """Recall of Chroma's top k against exact search (same vectors), on the first queries."""
        out = super().diagnostics(queries, k)
        if self._chroma is not None and queries.height:
            sample = queries.head(200)
            exact = self._exact_run(sample, k).group_by(QUERY_ID).agg(pl.col(ITEM_ID))
            ann = self.retrieve(sample, k).group_by(QUERY_ID).agg(pl.col(ITEM_ID).alias("ann"))
            both = exact.join(ann, on=QUERY_ID, how="left")
            hits = [
                len(set(a) & set(b or [])) / max(1, len(a))
                for a, b in both.select(ITEM_ID, "ann").iter_rows()
            ]
            out["chroma_recall_vs_exact"] = float(np.mean(hits)) if hits else 0.0
        return out

    def close(self) -> None:
        if self._chroma is not None:
            self._chroma.close()
            self._chroma = None
