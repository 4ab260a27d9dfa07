"""`cross_encoder`: a sentence-transformers CrossEncoder reranking the top-N of a first stage.

params.yaml: `components` are whole model specs (YAML anchors, as for `hybrid` / `xgb_ltr`),
built inside this model's own directories (`<model_dir>/components/<name>`,
`<index_dir>/components/<name>`); `first_stage` names the component whose top `candidates`
items are rescored by the cross-encoder, reading (query text, item text) jointly.

retrieve(queries, k): the first stage's top max(`candidates`, k) items per query; the top
`candidates` are rescored and sorted by the cross-encoder's raw logit (score = logit, no
sigmoid) or, with a fusion weight w < 1, by w * minmax(logit) + (1 - w) * minmax(first-stage
score) per query (w = `fusion_weight`, or chosen on the valid split after training from 0.0,
0.1, ..., 1.0: a reranker that is not yet better than its first stage then leans on it); when
k > `candidates`, first-stage ranks `candidates`+1..k follow in first-stage order with
synthetic scores below every reranked one (lowest reranked score of the query minus the
distance in ranks), so scores stay strictly descending down the run and reranking
costs at most `candidates` pairs per query. `score_pairs(queries, pairs)` gives the logit of
arbitrary (query_id, item_id) pairs (xgb_ltr uses it as an exact feature); equal to the
retrieve scores up to float noise (batches are formed by length).

train@ (`train: true`): `fit` builds private copies of the components in a temporary
directory, mines the first stage's top `candidates` for the judged train queries (at most
`max_train_queries`, a seeded sample) and makes pairs: every relevant judgment (grade > 0) of
a catalog item (found by the first stage or not) + a seeded sample of up to `negatives`
grade-0 candidates per query (judged non-relevant or unjudged). Labels = grade / max train
grade in [0, 1] (graded BCE-with-logits targets). Initialised from `model` (by default the
packaged all-MiniLM-L6-v2: a BERT encoder whose 1-logit head is freshly initialised after
seeding torch), trained with a plain torch loop: AdamW, linear warmup/decay, gradient
clipping at 1.0, seeded shuffling; deterministic on CPU. After each epoch the valid queries'
candidates are reranked, ndcg@10 on the valid qrels is reported to the progress hook
(`training.report_valid`, which may raise to stop a trial) and the best epoch's weights are
kept; `early_stopping` epochs without gain end the training (0: all `epochs` run). The first
stage's own valid ndcg@10 is recorded as epoch 0. Without a valid split, the last epoch is
kept. `train: false`: `model` must already be a trained cross-encoder (a sequence-
classification checkpoint, e.g. a `<model_dir>/cross_encoder/` of this family); fit trains
nothing and the model is copied into the model directory when saved.

Refused with InputError: a train split with no positive pair (none in the qrels, or none of
a judged train query on a catalog item), a valid split given with no judged relevant query.
ConfigError: `first_stage` not a component, a component that is itself a cross_encoder,
`train: false` with a checkpoint that has no classification head, a model that cannot be
loaded (weights are never downloaded).

model_dir: `shelflab-model.json`, `cross_encoder/` (CrossEncoder.save_pretrained: config,
tokenizer, `model.safetensors`; no pickle), `cross_encoder.json` (train info: epochs run,
best epoch, per-epoch valid ndcg@10 and mean loss, pair counts, seconds),
`components/<name>/`.
index_dir: `shelflab-index.json`, `items.parquet` (item_id, text: the reranker reads item
text), `components/<name>/`.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from shelflab.atomic import write_json, write_parquet
from shelflab.contract import GRADE, ITEM_ID, QUERY_ID, RANK, SCORE, TEXT, add_rank, require_columns
from shelflab.errors import ConfigError, InputError
from shelflab.models.bm25 import RUN_COLUMNS, check_items, empty_run
from shelflab.models.composite import COMPONENTS, Composite, check_components
from shelflab.models.params import Param
from shelflab.models.training import (
    built_models,
    has_valid,
    judged_queries,
    labelled_candidates,
    report_valid,
    require_positive,
    score_run,
    seed_everything,
)

if TYPE_CHECKING:
    import numpy as np

    from shelflab.models.base import TrainData

CE_DIR = "cross_encoder"
CE_FILE = "cross_encoder.json"
ITEMS_FILE = "items.parquet"
PREDICT_BATCH = 64
PROGRESS_EVERY = 50
QUERY_TEXT, ITEM_TEXT = "_query_text", "_item_text"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence model loading: the "Converting SentenceTransformer model" note, the load report
    listing the freshly initialised head, and the weight-loading progress bar."""
    import logging

    from transformers.utils import logging as hf_logging

    st_logger = logging.getLogger("sentence_transformers")
    level = st_logger.level
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    st_logger.setLevel(logging.ERROR)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        st_logger.setLevel(level)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


FIRST_SCORE, LOGIT = "_first_score", "_logit"


def _minmax(col: str) -> pl.Expr:
    """Per-query min-max normalisation (0 when a query's values are all equal)."""
    lo, hi = pl.col(col).min().over(QUERY_ID), pl.col(col).max().over(QUERY_ID)
    return pl.when(hi > lo).then((pl.col(col) - lo) / (hi - lo)).otherwise(0.0)


def _log(message: str) -> None:
    print(f"[cross_encoder] {message}", file=sys.stderr, flush=True)


class CrossEncoderRetriever(Composite):
    family: ClassVar[str] = "cross_encoder"
    PARAMS: ClassVar[dict[str, Param]] = {
        "components": Param(
            "models",
            {"hybrid": {"family": "hybrid"}},
            help="component name -> model params; `first_stage` names the candidate source",
        ),
        "first_stage": Param("str", "hybrid", help="the component that proposes candidates"),
        "candidates": Param("int", 50, min=1, help="first-stage items reranked per query"),
        "model": Param(
            "str",
            "all-MiniLM-L6-v2",
            help="local directory, alias or package with get_model_path(); with train: false "
            "an already trained cross-encoder",
        ),
        "train": Param("bool", True, help="false: use `model` as a trained cross-encoder"),
        "epochs": Param("int", 1, min=1),
        "lr": Param("float", 2e-5, min=0.0),
        "batch_size": Param("int", 16, min=1),
        "max_length": Param("int", 64, min=8, help="tokens of query + item text"),
        "negatives": Param("int", 8, min=1, help="grade-0 candidates sampled per train query"),
        "warmup_ratio": Param("float", 0.1, min=0.0, max=1.0),
        "seed": Param("int", 42),
        "device": Param("str", "auto", help="auto | cpu | cuda | cuda:N | mps"),
        "max_train_queries": Param(
            "int", None, min=1, nullable=True, help="seeded sample of the train queries"
        ),
        "early_stopping": Param(
            "int", 1, min=0, help="epochs without valid ndcg@10 gain before stopping; 0: off"
        ),
        "fusion_weight": Param(
            "float",
            None,
            min=0.0,
            max=1.0,
            nullable=True,
            help="score = w * minmax(logit) + (1 - w) * minmax(first-stage score) per query; "
            "null: w chosen on the valid split after training (1.0 without one)",
        ),
    }

    @staticmethod
    def check_params(model: str, params: dict[str, Any]) -> None:
        check_components(model, params, "cross_encoder", first_stage=True)
        if params["lr"] <= 0:
            raise ConfigError(f"model {model!r}: param 'lr' must be > 0")

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self._ce: Any = None
        self.train_info: dict[str, Any] = {}
        self._items: pl.DataFrame | None = None

    # --- the cross-encoder ------------------------------------------------------------
    def _load_ce(self, path: Path, *, trained: bool) -> Any:
        """A CrossEncoder (1 logit) from a local directory; `trained`: refuse a checkpoint
        without a sequence-classification head (its head would be random)."""
        from shelflab.models.device import resolve_device
        from shelflab.models.encoders import _offline_env

        _offline_env()
        if trained:
            try:
                config = json.loads((path / "config.json").read_text())
            except (OSError, json.JSONDecodeError):
                config = {}
            archs = config.get("architectures") or []
            if not any(str(a).endswith("ForSequenceClassification") for a in archs):
                raise ConfigError(
                    f"model {self.name!r}: {path} is not a trained cross-encoder (config.json "
                    f"architectures {archs}, expected a *ForSequenceClassification head); "
                    "set train: true to train one"
                )
        from sentence_transformers import CrossEncoder

        device = resolve_device(self.params["device"], self.ctx.device)
        try:
            with _quiet():
                return CrossEncoder(
                    str(path),
                    num_labels=1,
                    device=device,
                    max_length=self.params["max_length"],
                    local_files_only=True,
                )
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"model {self.name!r}: cannot load cross-encoder {path} ({exc})"
            ) from exc

    def _require_ce(self) -> Any:
        if self._ce is None:
            if self.params["train"]:
                raise ConfigError(f"model {self.name!r}: call fit or load first")
            from shelflab.models.encoders import resolve_model_path

            self._ce = self._load_ce(resolve_model_path(self.params["model"]), trained=True)
        return self._ce

    def _predict(self, ce: Any, query_texts: list[str], item_texts: list[str]) -> np.ndarray:
        """Raw logits (float64) of the (query text, item text) pairs."""
        import numpy as np
        import torch

        if not query_texts:
            return np.zeros(0, dtype=np.float64)
        scores = ce.predict(
            list(zip(query_texts, item_texts, strict=True)),
            batch_size=PREDICT_BATCH,
            activation_fn=torch.nn.Identity(),
            convert_to_numpy=True,
            show_progress_bar=self.ctx.show_progress,
        )
        return np.asarray(scores, dtype=np.float64).reshape(-1)

    @property
    def weight(self) -> float:
        """The fusion weight in use: the param, else the one chosen on valid by fit."""
        w = self.params["fusion_weight"]
        return float(w if w is not None else self.train_info.get("fusion_weight", 1.0))

    def _rerank(
        self,
        ce: Any,
        first: pl.DataFrame,
        queries: pl.DataFrame,
        items: pl.DataFrame,
        k: int,
        *,
        weight: float | None = None,
        logits: Any = None,
    ) -> pl.DataFrame:
        """The first-stage run's top `candidates` rescored (cross-encoder logit fused with the
        first-stage score by `weight`), then its ranks `candidates`+1..k below them (see the
        module docstring); top k per query. `logits`: precomputed, in the head's order."""
        n = self.params["candidates"]
        first = first.select(
            pl.col(QUERY_ID).cast(pl.String),
            pl.col(ITEM_ID).cast(pl.String),
            pl.col(SCORE).cast(pl.Float64).alias(FIRST_SCORE),
            RANK,
        )
        head = (
            first.filter(pl.col(RANK) <= n)
            .join(
                queries.select(QUERY_ID, pl.col(TEXT).alias(QUERY_TEXT)),
                on=QUERY_ID,
                how="left",
                maintain_order="left",
            )
            .join(
                items.select(ITEM_ID, pl.col(TEXT).alias(ITEM_TEXT)),
                on=ITEM_ID,
                how="left",
                maintain_order="left",
            )
        )
        if head.height == 0:
            return empty_run()
        if logits is None:
            logits = self._predict(
                ce,
                head[QUERY_TEXT].fill_null("").to_list(),
                head[ITEM_TEXT].fill_null("").to_list(),
            )
        head = head.select(QUERY_ID, ITEM_ID, RANK, FIRST_SCORE).with_columns(
            pl.Series(LOGIT, logits, dtype=pl.Float64)
        )
        w = self.weight if weight is None else weight
        if w >= 1.0:
            head = head.with_columns(pl.col(LOGIT).alias(SCORE))
        else:
            head = head.with_columns(
                (w * _minmax(LOGIT) + (1.0 - w) * _minmax(FIRST_SCORE)).alias(SCORE)
            )
        tail = first.filter((pl.col(RANK) > n) & (pl.col(RANK) <= k))
        parts = [head.select(QUERY_ID, ITEM_ID, SCORE)]
        if tail.height:
            floor = head.group_by(QUERY_ID).agg(pl.col(SCORE).min().alias("_floor"))
            tail = tail.join(floor, on=QUERY_ID, how="left", maintain_order="left")
            parts.append(
                tail.select(
                    QUERY_ID,
                    ITEM_ID,
                    (pl.col("_floor") - (pl.col(RANK) - n).cast(pl.Float64)).alias(SCORE),
                )
            )
        run = pl.concat(parts)
        return add_rank(run).filter(pl.col(RANK) <= k).select(RUN_COLUMNS)

    def score_pairs(self, queries: pl.DataFrame, pairs: pl.DataFrame) -> list[float]:
        """Cross-encoder logits of (query_id, item_id) pairs, in the order of `pairs`; the
        texts come from `queries` (query_id, text) and the opened index's items."""
        require_columns(queries, [QUERY_ID, TEXT], "queries")
        require_columns(pairs, [QUERY_ID, ITEM_ID], "pairs")
        items = self._require_items()
        ce = self._require_ce()
        qtext = queries.select(
            pl.col(QUERY_ID).cast(pl.String), pl.col(TEXT).cast(pl.String).alias(QUERY_TEXT)
        ).unique(QUERY_ID, keep="first")
        frame = (
            pairs.select(pl.col(QUERY_ID).cast(pl.String), pl.col(ITEM_ID).cast(pl.String))
            .join(qtext, on=QUERY_ID, how="left", maintain_order="left")
            .join(
                items.select(ITEM_ID, pl.col(TEXT).alias(ITEM_TEXT), pl.lit(True).alias("_known")),
                on=ITEM_ID,
                how="left",
                maintain_order="left",
            )
        )
        unknown = frame["_known"].is_null()
        if unknown.any():
            i = int(unknown.arg_max())
            raise InputError(
                f"item_id {frame[ITEM_ID][i]!r} is not in the indexed catalog",
                path="pairs",
                row=i + 1,
                expected="items of the catalog given to build_index",
            )
        missing = frame[QUERY_TEXT].is_null()
        if missing.any():
            i = int(missing.arg_max())
            raise InputError(
                f"query_id {frame[QUERY_ID][i]!r} is not in the queries",
                path="pairs",
                row=i + 1,
                expected="query ids of the queries frame",
            )
        return self._predict(
            ce, frame[QUERY_TEXT].to_list(), frame[ITEM_TEXT].fill_null("").to_list()
        ).tolist()

    # --- train@ -----------------------------------------------------------------------
    def fit(self, train: TrainData) -> None:
        p = self.params
        if not p["train"]:
            self._ce = None
            self._require_ce()  # checks that `model` loads and has a trained head
            self.train_info = {"trained": False, "model": p["model"]}
            return
        from shelflab.models.encoders import resolve_model_path

        start = time.perf_counter()
        require_positive(train.train_qrels, "train_qrels", "training")
        valid = has_valid(train)
        items = check_items(train.items)
        path = resolve_model_path(p["model"])
        n = p["candidates"]
        tq = judged_queries(train.train_queries, train.train_qrels)
        if p["max_train_queries"] is not None and tq.height > p["max_train_queries"]:
            tq = tq.sample(n=p["max_train_queries"], seed=p["seed"]).sort(QUERY_ID)
        vq = vqrels = None
        if valid:
            assert train.valid_queries is not None and train.valid_qrels is not None
            vq = judged_queries(train.valid_queries, train.valid_qrels)
            if vq.height == 0:
                raise InputError(
                    "no valid query has a relevant judgment",
                    path="valid_qrels",
                    expected="valid queries with at least one relevant item (grade > 0)",
                )
            # judged valid queries only, so every figure averages over the same queries
            vqrels = train.valid_qrels.filter(
                pl.col(QUERY_ID).cast(pl.String).is_in(vq[QUERY_ID].implode())
            )
        with built_models(p[COMPONENTS], items, self.ctx, "cross_encoder") as comps:
            first = comps[p["first_stage"]]
            cands = labelled_candidates(first, tq, train.train_qrels, n)
            va_first = first.retrieve(vq, n) if vq is not None else None
        pairs = self._train_pairs(tq, train.train_qrels, cands, items)
        if pairs.height == 0 or not (pairs[GRADE] > 0).any():
            raise InputError(
                "no positive (query, item) pair for a judged training query on a catalog item",
                path="train_qrels",
                expected="training queries with relevant items (grade > 0) in the catalog",
            )

        seed_everything(p["seed"])  # the fresh classification head is drawn here
        ce = self._load_ce(path, trained=False)
        history: dict[str, Any] = {"loss": [], "valid_ndcg@10": []}
        base = None
        if va_first is not None:
            assert vqrels is not None
            base = score_run(va_first, vqrels)
            history["valid_ndcg@10"].append(base)
            _log(
                f"{self.name}: epoch 0 (first stage {p['first_stage']!r}) valid ndcg@10 {base:.4f}"
            )
        best, best_epoch, best_state, stale = float("-inf"), 0, None, 0
        epochs_run = 0
        for epoch, loss in self._train_epochs(ce, pairs):
            epochs_run = epoch
            history["loss"].append(loss)
            if va_first is None:
                _log(f"{self.name}: epoch {epoch}/{p['epochs']} mean loss {loss:.4f}")
                best_epoch = epoch
                continue
            assert vq is not None and vqrels is not None
            ndcg = score_run(self._rerank(ce, va_first, vq, items, n, weight=1.0), vqrels)
            history["valid_ndcg@10"].append(ndcg)
            _log(
                f"{self.name}: epoch {epoch}/{p['epochs']} mean loss {loss:.4f} "
                f"valid ndcg@10 {ndcg:.4f} (first stage {base:.4f})"
            )
            if ndcg > best:
                best, best_epoch, stale = ndcg, epoch, 0
                best_state = {k: v.detach().clone() for k, v in ce.state_dict().items()}
            else:
                stale += 1
            report_valid(self.ctx, epoch, ndcg)
            if p["early_stopping"] and stale >= p["early_stopping"]:
                _log(f"{self.name}: early stop after epoch {epoch} (best epoch {best_epoch})")
                break
        if best_state is not None and best_epoch != epochs_run:
            ce.load_state_dict(best_state)
        ce.eval()
        self._ce = ce
        weight, fusion = 1.0, {}
        if p["fusion_weight"] is not None:
            weight = float(p["fusion_weight"])
        elif va_first is not None:
            assert vq is not None and vqrels is not None
            weight, fusion = self._choose_weight(ce, va_first, vq, items, vqrels)
            _log(f"{self.name}: fusion weight {weight:.1f} (valid ndcg@10 {fusion[weight]:.4f})")
        self.train_info = {
            "trained": True,
            "model": p["model"],
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "valid_ndcg@10": history["valid_ndcg@10"],  # index = epoch, 0 = first stage alone
            "first_stage_valid_ndcg@10": base,
            "best_valid_ndcg@10": best if base is not None else None,
            "loss": history["loss"],
            "fusion_weight": weight,
            "valid_ndcg@10_by_fusion_weight": {f"{w:.1f}": v for w, v in fusion.items()},
            "train_queries": pairs[QUERY_ID].n_unique(),
            "train_pairs": pairs.height,
            "train_positives": int((pairs[GRADE] > 0).sum()),
            "valid_queries": 0 if vq is None else vq.height,
            "seconds": round(time.perf_counter() - start, 2),
        }

    def _choose_weight(self, ce, va_first, vq, items, vqrels) -> tuple[float, dict[float, float]]:
        """Grid 0.0, 0.1, ..., 1.0 on the valid split (logits computed once); the best weight,
        the highest on ties (trust the reranker when it is as good)."""
        n = self.params["candidates"]
        head = va_first.filter(pl.col(RANK) <= n)
        qtext = dict(zip(vq[QUERY_ID].cast(pl.String), vq[TEXT], strict=True))
        itext = dict(zip(items[ITEM_ID], items[TEXT], strict=True))
        logits = self._predict(
            ce,
            [qtext.get(q, "") for q in head[QUERY_ID].cast(pl.String)],
            [itext.get(i, "") or "" for i in head[ITEM_ID].cast(pl.String)],
        )
        scores = {
            w / 10: score_run(
                self._rerank(ce, va_first, vq, items, n, weight=w / 10, logits=logits), vqrels
            )
            for w in range(11)
        }
        best = max(scores.values())
        return max(w for w, v in scores.items() if v == best), scores

    def _train_pairs(
        self,
        queries: pl.DataFrame,
        qrels: pl.DataFrame,
        cands: pl.DataFrame,
        items: pl.DataFrame,
    ) -> pl.DataFrame:
        """(query_id, item_id, grade, label, query text, item text): all relevant judgments on
        catalog items + up to `negatives` sampled grade-0 candidates per query, sorted."""
        import numpy as np

        judged = qrels.select(
            pl.col(QUERY_ID).cast(pl.String),
            pl.col(ITEM_ID).cast(pl.String),
            pl.col(GRADE).cast(pl.Float64),
        ).unique([QUERY_ID, ITEM_ID], keep="first", maintain_order=True)
        pos = judged.filter(
            (pl.col(GRADE) > 0)
            & pl.col(QUERY_ID).is_in(queries[QUERY_ID].implode())
            & pl.col(ITEM_ID).is_in(items[ITEM_ID].implode())
        )
        neg = cands.filter(pl.col(GRADE) <= 0).select(QUERY_ID, ITEM_ID, RANK, GRADE)
        rng = np.random.default_rng(self.params["seed"])
        neg = (
            neg.sort(QUERY_ID, RANK)
            .with_columns(pl.Series("_key", rng.random(neg.height)))
            .sort(QUERY_ID, "_key")
            .group_by(QUERY_ID, maintain_order=True)
            .head(self.params["negatives"])
            .select(QUERY_ID, ITEM_ID, GRADE)
        )
        pairs = pl.concat([pos.select(QUERY_ID, ITEM_ID, GRADE), neg])
        if pairs.height == 0:
            return pairs
        top = pos[GRADE].max() if pos.height else 1.0
        return (
            pairs.with_columns((pl.col(GRADE) / top).clip(0.0, 1.0).alias("label"))
            .join(
                queries.select(QUERY_ID, pl.col(TEXT).alias(QUERY_TEXT)),
                on=QUERY_ID,
                how="left",
            )
            .join(items.select(ITEM_ID, pl.col(TEXT).alias(ITEM_TEXT)), on=ITEM_ID, how="left")
            .sort(QUERY_ID, ITEM_ID)
        )

    def _train_epochs(self, ce: Any, pairs: pl.DataFrame) -> Iterator[tuple[int, float]]:
        """Train `ce` epoch by epoch; yields (epoch, mean loss) after each one (the caller
        validates, then resumes or stops)."""
        import torch
        from sentence_transformers.util import batch_to_device
        from transformers import get_linear_schedule_with_warmup

        p = self.params
        texts = list(
            zip(
                pairs[QUERY_TEXT].fill_null("").to_list(),
                pairs[ITEM_TEXT].fill_null("").to_list(),
                strict=True,
            )
        )
        labels = torch.tensor(pairs["label"].to_list(), dtype=torch.float32)
        bs = p["batch_size"]
        steps_per_epoch = (len(texts) + bs - 1) // bs
        total = steps_per_epoch * p["epochs"]
        optimizer = torch.optim.AdamW(ce.parameters(), lr=p["lr"])
        schedule = get_linear_schedule_with_warmup(optimizer, int(total * p["warmup_ratio"]), total)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        gen = torch.Generator().manual_seed(p["seed"])
        device = ce.device
        step = 0
        for epoch in range(1, p["epochs"] + 1):
            ce.train()
            order = torch.randperm(len(texts), generator=gen).tolist()
            total_loss, seen = 0.0, 0
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                feats = batch_to_device(ce.preprocess([texts[i] for i in idx]), device)
                logits = ce(feats)["scores"].reshape(-1).float()
                loss = loss_fn(logits, labels[idx].to(logits.device))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(ce.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                total_loss += float(loss.detach()) * len(idx)
                seen += len(idx)
                if self.ctx.show_progress and step % PROGRESS_EVERY == 0:
                    _log(
                        f"{self.name}: epoch {epoch} step {step}/{total} "
                        f"loss {float(loss.detach()):.4f}"
                    )
            ce.eval()
            yield epoch, total_loss / max(seen, 1)

    def save_extra(self, model_dir: Path) -> None:
        if self._ce is None and self.params["train"]:
            raise ConfigError(f"model {self.name!r}: call fit before save")
        ce = self._require_ce()
        super().save_extra(model_dir)
        with _quiet():
            ce.save_pretrained(
                str(Path(model_dir) / CE_DIR), create_model_card=False, safe_serialization=True
            )
        write_json(self.train_info, Path(model_dir) / CE_FILE)

    def load_extra(self, model_dir: Path) -> None:
        model_dir = Path(model_dir)
        super().load_extra(model_dir)
        path = model_dir / CE_DIR
        if not path.is_dir():
            raise InputError(
                "no such directory", path=path, expected="a saved CrossEncoder (fit, then save)"
            )
        self._ce = self._load_ce(path, trained=True)
        info = model_dir / CE_FILE
        self.train_info = json.loads(info.read_text()) if info.exists() else {}

    # --- index@ -----------------------------------------------------------------------
    def build_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        super().build_index(check_items(items), index_dir)

    def build_own_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        write_parquet(items, index_dir / ITEMS_FILE)  # the reranker reads item text
        self._items = items

    def open_own_index(self, index_dir: Path) -> None:
        self._items = pl.read_parquet(index_dir / ITEMS_FILE)

    def _require_items(self) -> pl.DataFrame:
        if self._items is None:
            raise ConfigError(f"model {self.name!r}: call build_index or open_index first")
        return self._items

    # --- retrieve -----------------------------------------------------------------------
    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        items = self._require_items()
        require_columns(queries, [QUERY_ID, TEXT], "queries")
        if k < 1 or queries.height == 0:
            return empty_run()
        ce = self._require_ce()
        queries = queries.select(
            pl.col(QUERY_ID).cast(pl.String), pl.col(TEXT).cast(pl.String).fill_null("")
        )
        first = self.components[self.params["first_stage"]].retrieve(
            queries, max(self.params["candidates"], k)
        )
        return self._rerank(ce, first, queries, items, k)
