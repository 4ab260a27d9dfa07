"""`mmoe`: a multi-gate mixture-of-experts reranker over a next-item first stage's candidates.

The first stage (`first_stage`, two_tower by default, any next-item model) proposes candidates;
the network (`net.MMoENet`) scores each (history, candidate) pair for several tasks at once:
- `next_item`: is the candidate the user's next item (softmax over the user's candidates: the
  ranking task, and the score the run is ordered by);
- `attribute`: does the candidate share a brand/category with the next item (per candidate,
  binary; labels from the catalog's `attributes` column, which the S3-Rec and UniSRec loaders
  fill from item2attributes / the item text's brand and categories);
- `rating`: the star rating the user gave the next item (review-file sequences: the qrels'
  `rating` column). Only the candidate that is the next item has a label, (rating - lo) /
  (hi - lo) over `rating_scale` (1-5 stars), learnt by soft binary cross-entropy: the
  "satisfaction after engagement" pattern of YouTube's MMoE ranker (Zhao et al., RecSys 2019).
  The predicted rating is lo + (hi - lo) * sigmoid(logit).
Experts are shared; each task has its own gate and tower (`gates: shared`: one gate for all,
the ablation). Training examples are the training users' last training item after the rest of
their sequence, with the first stage's exact top `train_candidates` (its search index does not
exist during fit); serving re-scores its top `candidates` as its own search returns them.
Early stopping on valid NDCG@10 through the harness, keeping the best weights.

`diagnostics`: each gate's mean expert weights on the split's queries (`gate.<task>.e<i>`) and
the per-task valid scores measured after training (`fit_valid.<task>.<metric>`: NDCG@10,
attribute ROC AUC, rating RMSE and MAE in stars beside the RMSE of always predicting the
training mean).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from shelflab.contract import GRADE, HISTORY, ITEM_ID, QUERY_ID, RANK, SCORE
from shelflab.errors import ConfigError
from shelflab.models.base import TrainData
from shelflab.models.composite import Composite, check_components
from shelflab.models.device import resolve_device
from shelflab.models.early_stopping import EarlyStopping
from shelflab.models.mmoe.features import (
    DENSE_FEATURES,
    candidates_run,
    dense_features,
    top_candidates,
)
from shelflab.models.mmoe.labels import (
    attribute_matrix,
    mean_rating_logit,
    rating_labels,
    rating_range,
    rating_scores,
    shares_attribute,
    target_ratings,
)
from shelflab.models.params import Param
from shelflab.models.sequential import (
    SequentialRetriever,
    item_counts,
    left_padded,
    mask_history,
    training_sequences,
)
from shelflab.models.training import has_valid, record_validation, score_run, start_training
from shelflab.timing import Progress

TASKS = ("next_item", "attribute", "rating")


class MMoERetriever(Composite):
    family: ClassVar[str] = "mmoe"
    query_input: ClassVar[str] = HISTORY
    PARAMS: ClassVar[dict[str, Param]] = {
        "components": Param(
            "models",
            {"two_tower": {"family": "two_tower"}, "itemknn": {"family": "itemknn"}},
            help="the first stage and (optionally) an item-to-item model whose score is a feature",
        ),
        "first_stage": Param("str", "two_tower"),
        "item_to_item": Param("str", "itemknn", help="component scored as a feature; '' none"),
        "candidates": Param("int", 100, min=2, help="first-stage depth re-scored when serving"),
        "train_candidates": Param("int", 50, min=2, help="first-stage depth of a training user"),
        "tasks": Param("list[str]", ["next_item", "attribute"], help="next_item first"),
        "gates": Param("str", "per_task", choices=("per_task", "shared")),
        "rating_scale": Param(
            "list[float]", [1.0, 5.0], help="lowest and highest rating (rating task's labels)"
        ),
        "aux_weight": Param("float", 0.5, min=0.0, help="loss weight of each task after the first"),
        "experts": Param("int", 4, min=1),
        "expert_dim": Param("int", 32, min=4),
        "hidden": Param("int", 64, min=4),
        "dim": Param("int", 32, min=4),
        "maxlen": Param("int", 20, min=1, help="history items read"),
        "dropout": Param("float", 0.1, min=0.0, max=0.9),
        "lr": Param("float", 1e-3, min=0.0),
        "weight_decay": Param("float", 1e-5, min=0.0),
        "train_batch_size": Param("int", 64, min=1, help="users per step"),
        "epochs": Param("int", 10, min=1),
        "eval_every": Param("int", 1, min=1),
        "patience": Param("int", 2, min=0, help="evaluations without valid ndcg@10 gain; 0: never"),
        "batch_size": Param("int", 512, min=1, help="queries scored at once"),
        "text_model": Param("str", "all-MiniLM-L6-v2"),
        "text_max_seq_length": Param("int", 128, min=8),
        "seed": Param("int", 42),
        "device": Param("str", "auto"),
    }

    @staticmethod
    def check_params(model: str, params: dict[str, Any]) -> None:
        check_components(model, params, "mmoe", first_stage=True)
        tasks = params["tasks"]
        if not tasks or tasks[0] != "next_item" or len(set(tasks)) != len(tasks):
            raise ConfigError(f"model {model!r}: tasks must start with 'next_item', each once")
        unknown = [t for t in tasks if t not in TASKS]
        if unknown:
            raise ConfigError(f"model {model!r}: unknown task(s) {unknown}; known: {TASKS}")
        scale = params["rating_scale"]
        if len(scale) != 2 or not scale[0] < scale[1]:
            raise ConfigError(f"model {model!r}: rating_scale must be [lowest, highest]")
        i2i = params["item_to_item"]
        if i2i and (i2i not in params["components"] or i2i == params["first_stage"]):
            raise ConfigError(
                f"model {model!r}: item_to_item = {i2i!r} must name a component other than "
                "the first stage (or be '')"
            )

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self.net: Any = None
        self.text_emb: np.ndarray | None = None
        self._text_unit: np.ndarray | None = None
        self.popularity: np.ndarray | None = None
        self.history_log: list[dict[str, float]] = []
        self.fit_valid: dict[str, float] = {}
        self.ratings: dict[str, float] = {}  # the rating scale (lo, hi), the training mean

    @property
    def first(self) -> SequentialRetriever:
        model = self.components[self.params["first_stage"]]
        if not isinstance(model, SequentialRetriever):
            raise ConfigError(f"model {self.name!r}: first stage is not a next-item model")
        return model

    @property
    def i2i(self) -> SequentialRetriever | None:
        name = self.params["item_to_item"]
        return self.components[name] if name else None  # type: ignore[return-value]

    # --- training ---------------------------------------------------------------------
    def fit(self, train: TrainData) -> None:
        import torch

        from shelflab.models.semantic_ids import catalog_text_embeddings

        p = self.params
        rated = "rating" in p["tasks"]  # checked before the components' training
        stars = target_ratings(train.train_queries, train.train_qrels) if rated else None
        super().fit(train)  # the first stage and the item-to-item model
        self.device = start_training(p, self.ctx)
        first = self.first
        n_items = len(first.item_ids)
        encoded = [first.encode(x) for x in training_sequences(train)]
        keep = [i for i, s in enumerate(encoded) if len(s) > 1]
        sequences = [encoded[i] for i in keep]
        counts = item_counts(sequences, n_items)
        self.popularity = np.log1p(counts) / max(np.log1p(counts.max()), 1e-9)
        self.text_emb = catalog_text_embeddings(train, first.item_ids, p, self.ctx, "mmoe")
        attrs = attribute_matrix(train, first.item_ids) if "attribute" in p["tasks"] else None
        ratings = None
        if stars is not None:
            ratings = [stars[i] for i in keep]
            self.ratings = rating_range(ratings, *p["rating_scale"])
        examples = self._examples([s[:-1] for s in sequences], [s[-1] for s in sequences],
                                  p["train_candidates"], attrs, ratings)  # fmt: skip
        valid = self._valid_examples(train, attrs, rated) if has_valid(train) else None
        self.net = self._build().to(self.device)
        if ratings is not None:  # the rating tower starts by predicting the training mean
            tower = self.net.towers[p["tasks"].index("rating")]
            torch.nn.init.constant_(tower[-1].bias, mean_rating_logit(self.ratings))
        opt = torch.optim.Adam(self.net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        stopper = EarlyStopping.for_module(self.net, p["patience"])
        rng = np.random.default_rng(p["seed"])
        n = len(examples["hist"])
        size = p["train_batch_size"]
        progress = Progress(f"{self.name}: train", -(-n // size) * p["epochs"], "steps",
                            enabled=self.ctx.show_progress)  # fmt: skip
        start = time.perf_counter()
        for epoch in range(1, p["epochs"] + 1):
            self.net.train()
            losses = []
            order = rng.permutation(n)
            for i in range(0, n, size):
                idx = order[i : i + size]
                losses.append(self._step(opt, {k: v[idx] for k, v in examples.items()}))
                progress.update(1, epoch=epoch, loss=losses[-1])
            if valid is None or (epoch % p["eval_every"] and epoch != p["epochs"]):
                continue
            score = self._valid_ndcg(valid)
            if record_validation(self, epoch, losses, score, start, stopper, progress):
                break
        progress.close()
        stopper.restore()
        self.net.eval()
        if valid is not None:
            self.fit_valid = self._task_scores(valid)

    def _build(self):
        from shelflab.models.mmoe.net import MMoENet

        p = self.params
        return MMoENet(
            len(self.first.item_ids), self.text_emb, len(DENSE_FEATURES), dim=p["dim"],
            experts=p["experts"], expert_dim=p["expert_dim"], hidden=p["hidden"],
            tasks=len(p["tasks"]), gates=len(p["tasks"]) if p["gates"] == "per_task" else 1,
            dropout=p["dropout"],
        )  # fmt: skip

    def _examples(
        self,
        histories: list[list[int]],
        targets: list[int],
        depth: int,
        attrs: Any,
        ratings: list[float] | None = None,
    ) -> dict[str, np.ndarray]:
        """Arrays of the training (or valid) users: padded history, exact first-stage
        candidates, their dense features and the task labels (NaN: no label)."""
        parts: dict[str, list[np.ndarray]] = {}
        first, i2i = self.first, self.i2i
        size = self.params["batch_size"]
        for s in range(0, len(histories), size):
            hist = histories[s : s + size]
            scores = np.array(first.score(hist), dtype=np.float64)
            mask_history(scores, hist)
            cand = top_candidates(scores, depth)
            ranks = np.arange(1, cand.shape[1] + 1, dtype=np.float64)[None].repeat(len(cand), 0)
            batch = self._arrays(hist, cand, ranks, scores, i2i)
            target = np.asarray(targets[s : s + size])
            batch["next_item"] = (cand == target[:, None]) & (cand >= 0)
            if attrs is not None:
                batch["attribute"] = shares_attribute(attrs, cand, target)
            if ratings is not None:
                batch["rating"] = rating_labels(
                    batch["next_item"], ratings[s : s + size], self.ratings
                )
            for k, v in batch.items():
                parts.setdefault(k, []).append(v)
        return {k: np.concatenate(v) for k, v in parts.items()}

    def _arrays(self, hist, cand, ranks, first_scores, i2i) -> dict[str, np.ndarray]:
        i2i_scores = None if i2i is None else np.asarray(i2i.score(hist), dtype=np.float64)
        if self._text_unit is None:  # once: a request would otherwise renormalise the catalog
            norm = np.linalg.norm(self.text_emb, axis=1, keepdims=True)
            self._text_unit = self.text_emb / np.maximum(norm, 1e-9)
        dense = dense_features(
            cand, ranks, first_scores, i2i_scores, self.popularity, self._text_unit, hist
        )
        return {"hist": left_padded(hist, self.params["maxlen"]), "cand": cand, "dense": dense}

    def _valid_examples(self, train: TrainData, attrs: Any, rated: bool) -> dict[str, Any]:
        first = self.first
        target_of = dict(
            train.valid_qrels.filter(pl.col(GRADE) > 0).select(QUERY_ID, ITEM_ID).iter_rows()
        )
        queries = train.valid_queries.filter(pl.col(QUERY_ID).is_in(list(target_of)))
        qids = queries[QUERY_ID].cast(pl.String).to_list()
        hist = [first.encode(h or []) for h in queries[HISTORY].to_list()]
        target = [first.index_of.get(target_of[q], -1) for q in qids]
        ratings = target_ratings(queries, train.valid_qrels) if rated else None
        out: dict[str, Any] = self._examples(
            hist, target, self.params["candidates"], attrs, ratings
        )
        out["qids"], out["qrels"] = qids, train.valid_qrels
        return out

    def _step(self, opt, batch: dict[str, np.ndarray]) -> float:
        import torch

        from shelflab.models.mmoe.losses import multitask_loss

        t = {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        logits, _ = self.net(t["hist"], t["cand"] + 1, t["dense"])
        p = self.params
        loss = multitask_loss(logits, t["cand"], t, p["tasks"], p["aux_weight"])
        if not loss.requires_grad:  # no user of the batch has a label for any task
            return 0.0
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _forward(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        out, gates = [], []
        size = self.params["batch_size"]
        with torch.no_grad():
            for s in range(0, len(arrays["cand"]), size):
                t = {
                    k: torch.as_tensor(arrays[k][s : s + size], device=self.device)
                    for k in ("hist", "cand", "dense")
                }
                logits, weights = self.net(t["hist"], t["cand"] + 1, t["dense"])
                out.append(logits.float().cpu().numpy())
                gates.append(weights.float().cpu().numpy())
        return np.concatenate(out), np.concatenate(gates)

    def _valid_ndcg(self, valid: dict[str, Any]) -> float:
        self.net.eval()
        logits, _ = self._forward(valid)
        run = candidates_run(valid["qids"], valid["cand"], logits[..., 0], self.first.item_ids, 10)
        self.net.train()
        return score_run(run, valid["qrels"], "ndcg@10")

    def _task_scores(self, valid: dict[str, Any]) -> dict[str, float]:
        """Each task's valid score: next_item NDCG@10 over the whole catalog (harness), the
        attribute task's ROC AUC over the candidates, the rating task's RMSE and MAE in stars
        on the users whose next item is a candidate (and the RMSE of the training mean)."""
        from sklearn.metrics import roc_auc_score

        logits, _ = self._forward(valid)
        out = {"next_item.ndcg_at_10": self._valid_ndcg(valid)}  # MLflow names: no '@'
        mask = valid["cand"] >= 0
        for j, task in enumerate(self.params["tasks"][1:], start=1):
            if task == "rating":
                out.update(rating_scores(valid["rating"], logits[..., j], self.ratings))
                continue
            y = valid[task][mask]
            if 0 < y.sum() < len(y):
                out[f"{task}.auc"] = float(roc_auc_score(y, logits[..., j][mask]))
        return out

    # --- serving ----------------------------------------------------------------------
    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        size = self.params["batch_size"]
        runs = [self._rerank(queries.slice(i, size), k)[0] for i in range(0, queries.height, size)]
        schema = {QUERY_ID: pl.String, ITEM_ID: pl.String, SCORE: pl.Float64, RANK: pl.Int64}
        return pl.concat(runs) if runs else pl.DataFrame(schema=schema)

    def _rerank(self, queries: pl.DataFrame, k: int) -> tuple[pl.DataFrame, np.ndarray]:
        first = self.first
        qids = queries[QUERY_ID].cast(pl.String).to_list()
        hist = [first.encode(h or []) for h in queries[HISTORY].to_list()]
        depth = max(k, self.params["candidates"])
        found = first.retrieve(queries, depth).select(QUERY_ID, ITEM_ID, RANK)
        cand = np.full((len(qids), depth), -1, dtype=np.int64)
        ranks = np.full((len(qids), depth), depth + 1.0)
        row_of = {q: i for i, q in enumerate(qids)}
        for q, item, rank in found.iter_rows():
            if rank <= depth and item in first.index_of:
                cand[row_of[q], rank - 1] = first.index_of[item]
                ranks[row_of[q], rank - 1] = rank
        scores = np.asarray(first.score(hist), dtype=np.float64)
        logits, gates = self._forward(self._arrays(hist, cand, ranks, scores, self.i2i))
        return candidates_run(qids, cand, logits[..., 0], first.item_ids, k), gates[cand >= 0]

    def diagnostics(self, queries: pl.DataFrame, k: int) -> dict[str, float]:
        out = super().diagnostics(queries, k)
        out.update({f"fit_valid.{key}": value for key, value in self.fit_valid.items()})
        if queries.height:
            _, gates = self._rerank(queries.head(self.params["batch_size"]), k)
            names = self.params["tasks"] if self.params["gates"] == "per_task" else ["shared"]
            for g, task in enumerate(names):
                for e, weight in enumerate(gates[:, g].mean(axis=0)):
                    out[f"gate.{task}.e{e}"] = float(weight)
        return out

    # --- persistence ------------------------------------------------------------------
    def save_extra(self, model_dir: Path) -> None:
        import torch

        super().save_extra(model_dir)
        torch.save(self.net.state_dict(), Path(model_dir) / "mmoe.pt")
        np.save(Path(model_dir) / "text_embeddings.npy", self.text_emb)
        np.save(Path(model_dir) / "popularity.npy", self.popularity)
        (Path(model_dir) / "training.json").write_text(
            json.dumps(
                {"history": self.history_log, "fit_valid": self.fit_valid, "ratings": self.ratings},
                indent=2,
            )
        )

    def load_extra(self, model_dir: Path) -> None:
        import torch

        super().load_extra(model_dir)
        self.device = resolve_device(self.params["device"], self.ctx.device)
        self.text_emb = np.load(Path(model_dir) / "text_embeddings.npy")
        self.popularity = np.load(Path(model_dir) / "popularity.npy")
        info = json.loads((Path(model_dir) / "training.json").read_text())
        self.history_log, self.fit_valid = info["history"], info["fit_valid"]
        self.ratings = info.get("ratings", {})
        self.net = self._build()
        state = torch.load(Path(model_dir) / "mmoe.pt", map_location=self.device, weights_only=True)
        self.net.load_state_dict(state)
        self.net.to(self.device).eval()
