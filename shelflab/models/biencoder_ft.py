"""`biencoder_ft`: the packaged all-MiniLM-L6-v2 fine-tuned on the task, then searched like `dense`.

Training data (train split only): one (query, relevant item text) pair per judgment with grade
>= `positive_grade`, plus `negatives` hard negatives per pair mined with the `miner` model
(default bm25 over the whole catalog): the query's judged items below `positive_grade` first,
then unjudged items from the miner's top `mine_depth`, skipping its first `skip_top` unjudged
hits (on sparsely judged data the very top unjudged hits are often unlabelled positives).
Queries without a mined negative still train on in-batch negatives.

Loss: sentence-transformers MultipleNegativesRankingLoss (in-batch + hard negatives, scale
`scale`). Batches never hold the same query or the same positive item twice (a duplicate would
be a false in-batch negative). AdamW with linear warm-up/decay; seeded shuffling and seeded
torch: deterministic on CPU.

Early stopping: the valid split's ndcg@10 is measured before training (the zero-shot encoder)
and every `eval_every` steps (0 = once per epoch) by exact search over an evaluation catalog:
the whole catalog when it has at most `eval_max_items` items, else the valid queries' judged
items + their miner top-`mine_depth` + a seeded random sample of the rest up to that size
(a subset: the score steers training, the pipeline's evaluate stage gives the real figure).
Training stops after `patience` evaluations without a gain (0: never; the rule of
`shelflab.models.early_stopping`); the best weights are kept (the zero-shot weights when no
step beat them). Each evaluation is reported through `report_valid` (Optuna prunes there; its
step is the evaluation's index, 0 = zero-shot).

model_dir: `shelflab-model.json`, `encoder/` (a sentence-transformers directory, safetensors),
`biencoder_ft.json` (training history). Index and search: exactly as `dense` (exact + Chroma).
Refused with InputError: a train split with no positive pair, a valid split with none.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from shelflab.atomic import write_json
from shelflab.contract import GRADE, ITEM_ID, QUERY_ID, RANK, SCORE, TEXT, add_rank
from shelflab.errors import ConfigError, InputError
from shelflab.models.base import TrainData, check_items
from shelflab.models.dense import DenseRetriever
from shelflab.models.early_stopping import EarlyStopping
from shelflab.models.params import Param
from shelflab.models.training import (
    POOL_BATCHES,
    built_models,
    has_valid,
    judged_queries,
    labelled_candidates,
    report_valid,
    require_positive,
    score_run,
    seed_everything,
)
from shelflab.timing import Progress

ENCODER_DIR = "encoder"
HISTORY_FILE = "biencoder_ft.json"


class BiEncoderFT(DenseRetriever):
    family: ClassVar[str] = "biencoder_ft"
    PARAMS: ClassVar[dict[str, Param]] = {
        **DenseRetriever.PARAMS,
        "max_seq_length": Param("int", 64, min=1, nullable=True),
        "miner": Param("models", {"bm25": {"family": "bm25"}}, help="one model: mines negatives"),
        "positive_grade": Param("float", 1.0, help="grade >= this is a positive pair"),
        "negatives": Param("int", 1, min=0, help="hard negatives per pair"),
        "mine_depth": Param("int", 30, min=1),
        "skip_top": Param("int", 3, min=0, help="unjudged miner hits skipped at the top"),
        "epochs": Param("int", 1, min=1),
        "lr": Param("float", 2e-5, min=0.0),
        "train_batch_size": Param("int", 32, min=2),
        "warmup_ratio": Param("float", 0.1, min=0.0, max=1.0),
        "weight_decay": Param("float", 0.01, min=0.0),
        "scale": Param("float", 20.0, min=0.0, help="MNRL similarity scale (1 / temperature)"),
        "max_train_pairs": Param("int", None, min=1, nullable=True, help="seeded cap"),
        "eval_every": Param("int", 0, min=0, help="steps between valid evaluations; 0: epoch"),
        "eval_max_items": Param("int", 20000, min=1),
        "patience": Param(
            "int", 2, min=0, help="evaluations without valid ndcg@10 gain before stopping; 0: never"
        ),
        "seed": Param("int", 42),
    }

    @staticmethod
    def check_params(model: str, params: dict[str, Any]) -> None:
        from shelflab.models.registry import validate_spec

        miner = params["miner"]
        if len(miner) != 1:
            raise ConfigError(f"model {model!r}: param 'miner' must hold exactly one model")
        ((name, spec),) = miner.items()
        params["miner"] = {name: {"family": spec.get("family", name), **validate_spec(name, spec)}}

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self._encoder_dir: Path | None = None  # fitted/loaded weights (else params["model"])
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.history: dict[str, Any] = {}

    @property
    def model_path(self) -> Path:
        return self._encoder_dir if self._encoder_dir is not None else super().model_path

    def _set_encoder_dir(self, path: Path) -> None:
        self._encoder_dir, self._encoder = Path(path), None

    # --- train@ ---------------------------------------------------------------------------
    def fit(self, train: TrainData) -> None:
        p = self.params
        require_positive(train.train_qrels, "train_qrels", "training")
        valid = has_valid(train)
        items = check_items(train.items)
        seed_everything(p["seed"])
        with built_models(p["miner"], items, self.ctx, "biencoder_ft") as miners:
            (miner,) = miners.values()
            pairs = self._mine(miner, train.train_queries, train.train_qrels, items)
            evalset = None
            if valid:
                assert train.valid_queries is not None and train.valid_qrels is not None
                evalset = self._eval_set(miner, train.valid_queries, train.valid_qrels, items)
        if not pairs:
            raise InputError(
                f"no training pair with grade >= {p['positive_grade']} and an item in the catalog",
                path="train_qrels",
                expected="judged relevant (query, catalog item) pairs",
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="biencoder_ft-")
        out = Path(self._tmp.name) / ENCODER_DIR
        self.history = _train(self, pairs, evalset, out)
        self._set_encoder_dir(out)

    def _mine(
        self, miner: Any, queries: pl.DataFrame, qrels: pl.DataFrame, items: pl.DataFrame
    ) -> list[list[str]]:
        """[query, positive, negative_1..n] texts, one row per positive judgment."""
        import numpy as np

        p = self.params
        text = dict(zip(items[ITEM_ID].to_list(), items[TEXT].to_list(), strict=True))
        judged = qrels.select(
            pl.col(QUERY_ID).cast(pl.String),
            pl.col(ITEM_ID).cast(pl.String),
            pl.col(GRADE).cast(pl.Float64),
        ).filter(pl.col(ITEM_ID).is_in(items[ITEM_ID].implode()))
        qs = judged_queries(queries, judged.filter(pl.col(GRADE) >= p["positive_grade"]))
        cands = labelled_candidates(miner, qs, judged, p["mine_depth"])
        grades = {(q, i): g for q, i, g in judged.iter_rows()}
        unjudged = (
            cands.join(judged, on=[QUERY_ID, ITEM_ID], how="anti", maintain_order="left")
            .with_columns(pl.int_range(pl.len()).over(QUERY_ID).alias("_n"))
            .filter(pl.col("_n") >= p["skip_top"])
        )
        pool: dict[str, list[str]] = {}
        for q, i, g in judged.sort(GRADE, ITEM_ID).iter_rows():
            if g < p["positive_grade"]:
                pool.setdefault(q, []).append(i)
        for q, i in unjudged.select(QUERY_ID, ITEM_ID).iter_rows():
            pool.setdefault(q, []).append(i)
        qtext = dict(zip(qs[QUERY_ID].to_list(), qs[TEXT].to_list(), strict=True))
        rows = []
        for (q, i), g in sorted(grades.items()):
            if g < p["positive_grade"] or q not in qtext:
                continue
            negs = pool.get(q, [])
            rows.append((q, i, negs))
        rng = np.random.default_rng(p["seed"])
        if p["max_train_pairs"] and len(rows) > p["max_train_pairs"]:
            keep = np.sort(rng.choice(len(rows), p["max_train_pairs"], replace=False))
            rows = [rows[j] for j in keep]
        n = p["negatives"]
        all_items = items[ITEM_ID].to_list()
        pos_of: dict[str, set[str]] = {}
        for q, i, _ in rows:
            pos_of.setdefault(q, set()).add(i)
        out: list[list[str]] = []
        seen: dict[str, int] = {}
        for q, i, negs in rows:
            if not negs and n:
                # nothing mined: random catalog items (every row needs the same columns)
                own = pos_of[q]
                draw = rng.choice(len(all_items), min(len(all_items), 4 * n + len(own)))
                negs = [all_items[j] for j in draw if all_items[j] not in own][:n] or [i]
            # rotate through the query's pool so its pairs get different negatives
            start = seen.get(q, 0)
            seen[q] = start + n
            picked = [negs[(start + j) % len(negs)] for j in range(n)]
            out.append([qtext[q], text[i], *(text[x] for x in picked), q, i])
        return out

    def _eval_set(
        self, miner: Any, queries: pl.DataFrame, qrels: pl.DataFrame, items: pl.DataFrame
    ) -> dict[str, Any]:
        """Valid queries, qrels and the evaluation catalog (see the module docstring)."""
        import numpy as np

        p = self.params
        qs = judged_queries(queries, qrels)
        if items.height <= p["eval_max_items"]:
            catalog = items
        else:
            cands = labelled_candidates(miner, qs, qrels, p["mine_depth"])
            need = set(cands[ITEM_ID].to_list()) | set(qrels[ITEM_ID].cast(pl.String).to_list())
            rest = items.filter(~pl.col(ITEM_ID).is_in(pl.Series(list(need)).implode()))
            extra = max(0, p["eval_max_items"] - len(need))
            rng = np.random.default_rng(p["seed"])
            pick = np.sort(rng.choice(rest.height, min(extra, rest.height), replace=False))
            catalog = pl.concat(
                [items.filter(pl.col(ITEM_ID).is_in(pl.Series(list(need)).implode())), rest[pick]]
            )
        return {"queries": qs, "qrels": qrels, "items": catalog}

    # --- save / load ---------------------------------------------------------------------
    def save_extra(self, model_dir: Path) -> None:
        if self._encoder_dir is None:
            raise ConfigError(f"model {self.name!r}: call fit before save")
        shutil.copytree(self._encoder_dir, Path(model_dir) / ENCODER_DIR)
        write_json(self.history, Path(model_dir) / HISTORY_FILE)

    def load_extra(self, model_dir: Path) -> None:
        import json

        path = Path(model_dir) / ENCODER_DIR
        if not (path / "config.json").exists():
            raise InputError(
                "no fine-tuned encoder here", path=path, expected="a directory written by fit"
            )
        self._set_encoder_dir(path)
        hist = Path(model_dir) / HISTORY_FILE
        self.history = json.loads(hist.read_text()) if hist.exists() else {}


# --- the training loop ---------------------------------------------------------------------
def _batches(rows: list[list[str]], size: int, seed: int, epoch: int) -> list[list[list[str]]]:
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


def _train(
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
    per_epoch = len(_batches(rows, p["train_batch_size"], p["seed"], 0))
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
        for batch in _batches(rows, p["train_batch_size"], p["seed"], epoch):
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
