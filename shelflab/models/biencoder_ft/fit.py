"""The training loop of `biencoder_ft` (see `model` for what it trains and how it stops):
seeded duplicate-free batches, MultipleNegativesRankingLoss with AdamW and linear warm-up,
exact-search valid ndcg@10 on the evaluation catalog, the best weights kept."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from shelflab.contract import ITEM_ID, QUERY_ID, RANK, SCORE, TEXT, add_rank
from shelflab.models.early_stopping import EarlyStopping
from shelflab.models.training import (
    POOL_BATCHES,
    report_valid,
    score_run,
    seed_everything,
)
from shelflab.timing import Progress

if TYPE_CHECKING:
    from shelflab.models.biencoder_ft.model import BiEncoderFT


def duplicate_free_batches(
    rows: list[list[str]], size: int, seed: int, epoch: int
) -> list[list[list[str]]]:
    """Seeded, length-bucketed batches with no query or positive item twice (the
    sentence-transformers NoDuplicatesBatchSampler rule); incomplete last batch kept. Rows are
    drawn at random in pools of POOL_BATCHES batches and sorted by text length within a pool,
    so each batch pads to a similar length (dynamic padding wastes little); then the batches
    are shuffled."""
    import numpy as np

    rng = np.random.default_rng([seed, epoch])
    lengths = np.array([sum(len(text) for text in row[:-2]) for row in rows])
    shuffled = rng.permutation(len(rows))
    pool = size * POOL_BATCHES
    order = [
        int(j)
        for start in range(0, len(rows), pool)
        for j in sorted(shuffled[start : start + pool], key=lambda j: lengths[j])
    ]
    batches: list[list[list[str]]] = []
    while order:
        batch, keys, left = [], set(), []
        for j in order:
            q, i = rows[j][-2], rows[j][-1]
            if len(batch) < size and q not in keys and i not in keys:
                batch.append(rows[j])
                keys.update((q, i))
            else:
                left.append(j)
        batches.append(batch)
        order = left
    return [batches[k] for k in rng.permutation(len(batches))]


def _evaluate(model: Any, evalset: dict[str, Any], batch_size: int) -> float:
    """Exact-search ndcg@10 of the encoder on the evaluation catalog."""
    import numpy as np

    from shelflab.models.encoders import encode

    items, qs = evalset["items"], evalset["queries"]
    model.eval()
    emb = encode(model, items[TEXT].to_list(), batch_size)
    q = encode(model, qs[TEXT].to_list(), batch_size)
    k = min(100, emb.shape[0])
    sims = q @ emb.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    ids = np.asarray(items[ITEM_ID].to_list(), dtype=object)
    run = pl.DataFrame(
        {
            QUERY_ID: np.repeat(np.asarray(qs[QUERY_ID].to_list(), dtype=object), k).tolist(),
            ITEM_ID: ids[top.ravel()].tolist(),
            SCORE: np.take_along_axis(sims, top, axis=1).ravel().astype(np.float64),
        },
        schema={QUERY_ID: pl.String, ITEM_ID: pl.String, SCORE: pl.Float64},
    )
    return score_run(add_rank(run).select(QUERY_ID, ITEM_ID, SCORE, RANK), evalset["qrels"])


_START_SCORES: dict[str, float] = {}  # the untrained encoder's valid score, per process


def _start_key(self: BiEncoderFT, evalset: dict[str, Any] | None) -> str:
    """Identity of the step-0 evaluation: start weights, sequence length, evaluation set
    (tuning trials share it, so the zero-shot encoder is evaluated once per process)."""
    import hashlib

    from shelflab.models.dense import _fingerprint
    from shelflab.models.encoders import resolve_model_path

    if evalset is None:
        return ""
    start = resolve_model_path(self.params["model"])
    h = hashlib.sha256(_fingerprint(str(start), f"len={self.params['max_seq_length']}").encode())
    for frame in (evalset["items"], evalset["queries"], evalset["qrels"]):
        h.update(str(frame.hash_rows().sum()).encode() + str(frame.shape).encode())
    return h.hexdigest()


def train_encoder(
    self: BiEncoderFT, rows: list[list[str]], evalset: dict[str, Any] | None, out: Path
) -> dict[str, Any]:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.util import batch_to_device
    from transformers import get_linear_schedule_with_warmup

    from shelflab.models.encoders import _offline_env, resolve_model_path

    p, ctx = self.params, self.ctx
    _offline_env()
    seed_everything(p["seed"])
    model = SentenceTransformer(
        str(resolve_model_path(p["model"])), device=self.device, local_files_only=True
    )
    if p["max_seq_length"]:
        model.max_seq_length = p["max_seq_length"]
    loss_fn = MultipleNegativesRankingLoss(model, scale=p["scale"])
    per_epoch = len(duplicate_free_batches(rows, p["train_batch_size"], p["seed"], 0))
    total = per_epoch * p["epochs"]
    no_decay = ("bias", "LayerNorm.weight", "norm.weight")
    groups = [
        {
            "params": [w for n, w in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": p["weight_decay"],
        },
        {
            "params": [w for n, w in model.named_parameters() if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    opt = torch.optim.AdamW(groups, lr=p["lr"])
    sched = get_linear_schedule_with_warmup(opt, int(p["warmup_ratio"] * total), total)
    every = p["eval_every"] or per_epoch
    hist: dict[str, Any] = {"pairs": len(rows), "steps_per_epoch": per_epoch, "evals": []}
    stopper = EarlyStopping.for_module(model, p["patience"])
    step, t0, train_seconds = 0, time.perf_counter(), 0.0

    start_key = _start_key(self, evalset)

    def validate() -> bool:
        """Evaluate, keep the best weights; True when training should stop."""
        if evalset is None:
            return False
        if step == 0 and start_key in _START_SCORES:  # same start weights, same eval set
            score = _START_SCORES[start_key]
        else:
            score = _evaluate(model, evalset, p["batch_size"])
        if step == 0:
            _START_SCORES[start_key] = score
        model.train()
        hist["evals"].append({"step": step, "ndcg@10": score})
        _log(f"{self.name}: step {step}/{total} valid ndcg@10 {score:.4f}")
        report_valid(ctx, len(hist["evals"]) - 1, score)  # step for the tuner: evaluation index
        return stopper.update(step, score)

    stop = validate()  # step 0: the zero-shot encoder
    model.train()
    progress = Progress(
        f"{self.name}: train", len(rows) * p["epochs"], "pairs", enabled=ctx.show_progress
    )
    for epoch in range(p["epochs"]):
        if stop:
            break
        losses = []
        for batch in duplicate_free_batches(rows, p["train_batch_size"], p["seed"], epoch):
            step_start = time.perf_counter()
            columns = list(zip(*(r[:-2] for r in batch), strict=True))
            feats = [batch_to_device(model.preprocess(list(c)), model.device) for c in columns]
            loss = loss_fn(feats, None)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            losses.append(float(loss.detach()))
            train_seconds += time.perf_counter() - step_start
            progress.update(len(batch), step=step, epoch=epoch + 1, loss=losses[-1])
            if step % every == 0 and (stop := validate()):
                break
        mean = sum(losses) / max(1, len(losses))
        hist.setdefault("epoch_loss", []).append(mean)
        _log(f"{self.name}: epoch {epoch + 1}/{p['epochs']} mean loss {mean:.4f}")
    progress.close()
    if evalset is not None and step % every != 0:
        validate()  # the last steps' weights are candidates too
    stopper.restore()  # no valid split: the last weights
    hist.update(
        steps=step,
        seconds=time.perf_counter() - t0,
        # training pairs per second of optimisation steps (validation excluded)
        examples_per_s=progress.done / train_seconds if train_seconds else 0.0,
        best_valid_ndcg10=stopper.best,
        best_step=stopper.best_step,
        eval_items=0 if evalset is None else evalset["items"].height,
        eval_queries=0 if evalset is None else evalset["queries"].height,
    )
    model.eval()
    model.save(str(out), safe_serialization=True)
    return hist


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
