"""`CrossEncoderRetriever`: params, the cross-encoder's life cycle (load, fit, save), the
item-text index and retrieval; see the package docstring for the whole family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import polars as pl

from shelflab.atomic import write_json
from shelflab.contract import ITEM_ID, QUERY_ID, TEXT, require_columns
from shelflab.errors import ConfigError, InputError
from shelflab.models.base import empty_run
from shelflab.models.composite import check_components
from shelflab.models.cross_encoder.encoder import (
    ITEM_TEXT,
    QUERY_TEXT,
    load_cross_encoder,
    predict_logits,
    quiet,
)
from shelflab.models.cross_encoder.fusion import candidate_head, fuse, head_texts
from shelflab.models.params import Param
from shelflab.models.reranker import Reranker, reranker_params

if TYPE_CHECKING:
    from shelflab.models.base import TrainData

CE_DIR = "cross_encoder"
CE_FILE = "cross_encoder.json"


class CrossEncoderRetriever(Reranker):
    family: ClassVar[str] = "cross_encoder"
    PARAMS: ClassVar[dict[str, Param]] = {
        **reranker_params(candidates=50),
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
        "eval_max_queries": Param(
            "int",
            None,
            min=1,
            nullable=True,
            help="a fixed seeded sample of the judged valid queries for early stopping and the "
            "fusion weight (null: all); each valid query's candidates are scored once per epoch",
        ),
        # was `early_stopping` (same meaning); one name for every trainer
        "patience": Param(
            "int", 1, min=0, help="epochs without valid ndcg@10 gain before stopping; 0: never"
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

    # --- the cross-encoder ------------------------------------------------------------
    def _load_ce(self, path: Path, *, trained: bool) -> Any:
        """A CrossEncoder (1 logit) from a local directory; `trained`: refuse a checkpoint
        without a sequence-classification head (its head would be random)."""
        from shelflab.models.device import resolve_device

        device = resolve_device(self.params["device"], self.ctx.device)
        return load_cross_encoder(
            self.name, path, trained=trained, device=device, max_length=self.params["max_length"]
        )

    def _require_ce(self) -> Any:
        if self._ce is None:
            if self.params["train"]:
                raise ConfigError(f"model {self.name!r}: call fit or load first")
            from shelflab.models.encoders import resolve_model_path

            self._ce = self._load_ce(resolve_model_path(self.params["model"]), trained=True)
        return self._ce

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
    ) -> pl.DataFrame:
        """The first-stage run's top `candidates` rescored by `ce` (fused with the first-stage
        score by `weight`, default `self.weight`), its ranks `candidates`+1..k below them."""
        n = self.params["candidates"]
        first, head = candidate_head(first, queries, items, n)
        if head.height == 0:
            return empty_run()
        logits = predict_logits(ce, *head_texts(head), show_progress=self.ctx.show_progress)
        return fuse(first, head, logits, n, k, self.weight if weight is None else weight)

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
        return predict_logits(
            ce,
            frame[QUERY_TEXT].to_list(),
            frame[ITEM_TEXT].fill_null("").to_list(),
            show_progress=self.ctx.show_progress,
        ).tolist()

    # --- train@ -----------------------------------------------------------------------
    def fit(self, train: TrainData) -> None:
        if not self.params["train"]:
            self._ce = None
            self._require_ce()  # checks that `model` loads and has a trained head
            self.train_info = {"trained": False, "model": self.params["model"]}
            return
        from shelflab.models.cross_encoder.fit import fit_cross_encoder

        self._ce, self.train_info = fit_cross_encoder(self, train)

    def save_extra(self, model_dir: Path) -> None:
        if self._ce is None and self.params["train"]:
            raise ConfigError(f"model {self.name!r}: call fit before save")
        ce = self._require_ce()
        super().save_extra(model_dir)
        with quiet():
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
