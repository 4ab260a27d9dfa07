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

The training loop is in `fit`. model_dir: `shelflab-model.json`, `encoder/` (a
sentence-transformers directory, safetensors), `biencoder_ft.json` (training history). Index
and search: exactly as `dense` (exact + Chroma).
Refused with InputError: a train split with no positive pair, a valid split with none.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from shelflab.atomic import write_json
from shelflab.contract import GRADE, ITEM_ID, QUERY_ID, TEXT
from shelflab.errors import ConfigError, InputError
from shelflab.models.base import TrainData, check_items
from shelflab.models.biencoder_ft.fit import train_encoder
from shelflab.models.dense import DenseRetriever
from shelflab.models.params import Param
from shelflab.models.training import (
    built_models,
    has_valid,
    judged_queries,
    labelled_candidates,
    require_positive,
    seed_everything,
)

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
        self.history = train_encoder(self, pairs, evalset, out)
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
