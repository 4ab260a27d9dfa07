"""train@ of `cross_encoder` (`train: true`): candidates mined from private copies of the
components, training pairs (`pairs`), a plain torch loop (AdamW, linear warmup/decay, gradient
clipping at 1.0, seeded shuffling; deterministic on CPU) validated after each epoch with
keep-best weights and `patience` (`shelflab.models.early_stopping`), then the fusion weight
chosen on valid (`fusion`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import polars as pl

from shelflab.contract import GRADE, QUERY_ID
from shelflab.errors import InputError
from shelflab.models.base import check_items
from shelflab.models.composite import COMPONENTS
from shelflab.models.cross_encoder.encoder import ITEM_TEXT, QUERY_TEXT, predict_logits
from shelflab.models.cross_encoder.fusion import candidate_head, choose_weight, fuse, head_texts
from shelflab.models.cross_encoder.pairs import LABEL, train_pairs
from shelflab.models.early_stopping import EarlyStopping
from shelflab.models.training import (
    bucketed_batch_count,
    built_models,
    has_valid,
    judged_queries,
    labelled_candidates,
    length_bucketed_batches,
    report_valid,
    require_positive,
    score_run,
    seed_everything,
)
from shelflab.timing import Progress

if TYPE_CHECKING:
    from shelflab.models.base import TrainData
    from shelflab.models.cross_encoder.model import CrossEncoderRetriever


def log(message: str) -> None:
    print(f"[cross_encoder] {message}", file=sys.stderr, flush=True)


def valid_split(
    train: TrainData, valid: bool, max_queries: int | None = None, seed: int = 0
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """(judged valid queries, their qrels), or (None, None) without a valid split (`valid`:
    `has_valid(train)`); judged queries only, so every valid figure averages over the same
    queries; at most `max_queries` of them (a seeded sample, fixed for every epoch)."""
    if not valid:
        return None, None
    assert train.valid_queries is not None and train.valid_qrels is not None
    vq = judged_queries(train.valid_queries, train.valid_qrels)
    if vq.height == 0:
        raise InputError(
            "no valid query has a relevant judgment",
            path="valid_qrels",
            expected="valid queries with at least one relevant item (grade > 0)",
        )
    if max_queries is not None and vq.height > max_queries:
        vq = vq.sample(n=max_queries, seed=seed).sort(QUERY_ID)
    vqrels = train.valid_qrels.filter(
        pl.col(QUERY_ID).cast(pl.String).is_in(vq[QUERY_ID].implode())
    )
    return vq, vqrels


def fit_cross_encoder(model: CrossEncoderRetriever, train: TrainData) -> tuple[Any, dict[str, Any]]:
    """Train `model`'s cross-encoder on `train`; (the trained CrossEncoder in eval mode, the
    train info saved as cross_encoder.json)."""
    from shelflab.models.encoders import resolve_model_path

    p, name = model.params, model.name
    start = time.perf_counter()
    require_positive(train.train_qrels, "train_qrels", "training")
    valid = has_valid(train)
    items = check_items(train.items)
    path = resolve_model_path(p["model"])
    n = p["candidates"]
    tq = judged_queries(train.train_queries, train.train_qrels)
    if p["max_train_queries"] is not None and tq.height > p["max_train_queries"]:
        tq = tq.sample(n=p["max_train_queries"], seed=p["seed"]).sort(QUERY_ID)
    vq, vqrels = valid_split(train, valid, p["eval_max_queries"], p["seed"])
    with built_models(p[COMPONENTS], items, model.ctx, "cross_encoder") as comps:
        first = comps[p["first_stage"]]
        cands = labelled_candidates(first, tq, train.train_qrels, n)
        va_first = first.retrieve(vq, n) if vq is not None else None
    pairs = train_pairs(
        tq, train.train_qrels, cands, items, negatives=p["negatives"], seed=p["seed"]
    )
    if pairs.height == 0 or not (pairs[GRADE] > 0).any():
        raise InputError(
            "no positive (query, item) pair for a judged training query on a catalog item",
            path="train_qrels",
            expected="training queries with relevant items (grade > 0) in the catalog",
        )

    seed_everything(p["seed"])  # the fresh classification head is drawn here
    ce = model._load_ce(path, trained=False)
    history: dict[str, list[float]] = {"loss": [], "valid_ndcg@10": []}
    base = None
    if va_first is not None:
        assert vqrels is not None
        base = score_run(va_first, vqrels)
        history["valid_ndcg@10"].append(base)  # epoch 0: the first stage alone
        log(f"{name}: epoch 0 (first stage {p['first_stage']!r}) valid ndcg@10 {base:.4f}")
    stopper = EarlyStopping.for_module(ce, p["patience"])
    epochs_run, pairs_per_s = 0, []
    # the valid head is scored once per epoch; the best epoch's logits also choose the fusion
    # weight, so the chosen weights are never scored twice
    valid_logits: dict[int, list[float]] = {}
    if va_first is not None:
        first_run, head = candidate_head(va_first, vq, items, n)
        valid_texts = head_texts(head)
    for epoch, loss, rate in train_epochs(
        ce, pairs, p, name=name, progress_lines=model.ctx.show_progress
    ):
        epochs_run = epoch
        history["loss"].append(loss)
        pairs_per_s.append(rate)
        if va_first is None:
            log(f"{name}: epoch {epoch}/{p['epochs']} mean loss {loss:.4f}")
            continue
        assert vq is not None and vqrels is not None
        show = model.ctx.show_progress
        valid_logits[epoch] = predict_logits(ce, *valid_texts, show_progress=show)
        ndcg = score_run(fuse(first_run, head, valid_logits[epoch], n, n, 1.0), vqrels)
        history["valid_ndcg@10"].append(ndcg)
        log(
            f"{name}: epoch {epoch}/{p['epochs']} mean loss {loss:.4f} "
            f"valid ndcg@10 {ndcg:.4f} (first stage {base:.4f})"
        )
        report_valid(model.ctx, epoch, ndcg)
        if stopper.update(epoch, ndcg):
            log(f"{name}: early stop after epoch {epoch} (best epoch {stopper.best_step})")
            break
    stopper.restore()  # the best epoch's weights; without a valid split the last ones
    ce.eval()
    weight, fusion = 1.0, {}
    if p["fusion_weight"] is not None:
        weight = float(p["fusion_weight"])
    elif va_first is not None:
        assert vq is not None and vqrels is not None
        logits = valid_logits.get(stopper.best_step if stopper.best_step is not None else -1)
        if logits is None:
            logits = predict_logits(ce, *valid_texts, show_progress=model.ctx.show_progress)
        weight, fusion = choose_weight(
            lambda w: score_run(fuse(first_run, head, logits, n, n, w), vqrels)
        )
        log(f"{name}: fusion weight {weight:.1f} (valid ndcg@10 {fusion[weight]:.4f})")
    info = {
        "trained": True,
        "model": p["model"],
        "epochs_run": epochs_run,
        "best_epoch": stopper.best_step if stopper.best_step is not None else epochs_run,
        "valid_ndcg@10": history["valid_ndcg@10"],  # index = epoch, 0 = first stage alone
        "first_stage_valid_ndcg@10": base,
        "best_valid_ndcg@10": stopper.best,  # None without a valid split
        "loss": history["loss"],
        "fusion_weight": weight,
        "valid_ndcg@10_by_fusion_weight": {f"{w:.1f}": v for w, v in fusion.items()},
        "train_queries": pairs[QUERY_ID].n_unique(),
        "train_pairs": pairs.height,
        "train_positives": int((pairs[GRADE] > 0).sum()),
        "train_pairs_per_s": round(sum(pairs_per_s) / len(pairs_per_s), 1) if pairs_per_s else 0,
        "valid_queries": 0 if vq is None else vq.height,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return ce, info


def train_epochs(
    ce: Any, pairs: pl.DataFrame, p: dict[str, Any], *, name: str, progress_lines: bool = False
) -> Iterator[tuple[int, float, float]]:
    """Train `ce` on `pairs` epoch by epoch (params `p`); yields (epoch, mean loss, training
    pairs per second) after each one, in eval mode (the caller validates, then resumes or
    stops)."""
    import numpy as np
    import torch
    from sentence_transformers.util import batch_to_device
    from transformers import get_linear_schedule_with_warmup

    texts = list(
        zip(
            pairs[QUERY_TEXT].fill_null("").to_list(),
            pairs[ITEM_TEXT].fill_null("").to_list(),
            strict=True,
        )
    )
    labels = torch.tensor(pairs[LABEL].to_list(), dtype=torch.float32)
    lengths = np.fromiter((len(q) + len(t) for q, t in texts), dtype=np.int64, count=len(texts))
    bs = p["batch_size"]
    total = bucketed_batch_count(len(texts), bs) * p["epochs"]
    optimizer = torch.optim.AdamW(ce.parameters(), lr=p["lr"])
    schedule = get_linear_schedule_with_warmup(optimizer, int(total * p["warmup_ratio"]), total)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(p["seed"])
    device = ce.device
    progress = Progress(f"{name}: train", len(texts) * p["epochs"], "pairs", enabled=progress_lines)
    for epoch in range(1, p["epochs"] + 1):
        ce.train()
        total_loss, seen, epoch_start = 0.0, 0, time.perf_counter()
        # pairs of similar length share a batch: each is padded to its own longest pair
        for batch in length_bucketed_batches(lengths, bs, rng):
            idx = batch.tolist()
            feats = batch_to_device(ce.preprocess([texts[i] for i in idx]), device)
            logits = ce(feats)["scores"].reshape(-1).float()
            loss = loss_fn(logits, labels[idx].to(logits.device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ce.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            total_loss += float(loss.detach()) * len(idx)
            seen += len(idx)
            progress.update(len(idx), epoch=epoch, loss=float(loss.detach()))
        rate = seen / max(time.perf_counter() - epoch_start, 1e-9)
        ce.eval()
        if epoch == p["epochs"]:
            progress.close()  # an early stop leaves it open: the step count would mislead
        yield epoch, total_loss / max(seen, 1), rate
