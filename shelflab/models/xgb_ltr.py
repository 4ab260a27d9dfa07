"""`xgb_ltr`: XGBoost learning to rank over the top-N candidates of a first-stage model.

params.yaml: `components` are whole model specs (YAML anchors, as for `hybrid`), built inside
this model's own directories (`<model_dir>/components/<name>`, `<index_dir>/components/<name>`);
`first_stage` names the component whose top `candidates` items are reranked.

Feature models: every component and, for a `hybrid` component, each of its own components
(named `<hybrid>.<sub>`), so `components: {hybrid: *hybrid}` yields bm25, dense and fused
features without building anything twice. Per feature model (group "scores", see
`shelflab.models.features`): score, reciprocal rank in its own top-`candidates` list, and
- bm25: the exact bm25 score of every candidate (bm25s `get_scores` for the query),
- dense: the exact cosine of every candidate (query embedding . item embedding),
- others (hybrid, future families): the run's score, a candidate absent from the run getting
  that run's lowest score for the query, plus a `<name>_missing` indicator.
A component family may provide `score_pairs(queries, pairs) -> list[float]` to give exact
scores (e.g. a cross-encoder); it is then used like bm25/dense.
Text features (lexical, fuzzy, length, numeric) come from the query and item texts.

train@: `fit` builds private copies of the components in a temporary directory (dense item
embeddings come from the shared cache; no Chroma collection unless `search: chroma`), makes
the candidates of the train (and valid) queries, labels them with the qrels grades (unjudged
= 0), and trains a booster (hist, fixed `nthread`, `seed`: deterministic on CPU), early
stopping on valid ndcg@10 when a valid split is given. Labels are the grades with linear gain
(`ndcg_exp_gain: false`, so fractional grades work); rank:map takes binary labels (grade > 0).
Queries with no relevant candidate are dropped (they carry no ranking signal). Refused with
InputError: a train split with no positive pair (in the qrels, or among the candidates), a
valid split given with no judged relevant query (or none found by the first stage).

model_dir: `shelflab-model.json`, `booster.json` (XGBoost JSON, no pickle), `ltr.json`
(feature names, rounds, training counts), `components/<name>/`.
index_dir: `shelflab-index.json`, `items.parquet` (item_id, text: the text features need it),
`components/<name>/` (shared with cross_encoder: `shelflab.models.reranker`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from shelflab.atomic import write_json
from shelflab.contract import GRADE, ITEM_ID, QUERY_ID, RANK, SCORE, TEXT, add_rank, require_columns
from shelflab.errors import ConfigError, InputError
from shelflab.models.base import (
    RUN_COLUMNS,
    Retriever,
    TrainData,
    by_query_blocks,
    check_items,
    empty_run,
)
from shelflab.models.composite import COMPONENTS, check_components
from shelflab.models.dense import DenseRetriever
from shelflab.models.features import (
    GROUPS,
    ITEM_TEXT,
    QUERY_TEXT,
    model_score_features,
    text_feature_frame,
)
from shelflab.models.frame_cache import FrameCache, data_digest
from shelflab.models.hybrid import HybridRetriever
from shelflab.models.pair_scores import pair_scores
from shelflab.models.params import Param
from shelflab.models.reranker import Reranker, reranker_params
from shelflab.models.training import built_models, has_valid, require_positive
from shelflab.models.xgb_training import dmatrix, report_valid_callback

BOOSTER_FILE = "booster.json"
LTR_FILE = "ltr.json"
OBJECTIVES = ("rank:ndcg", "rank:pairwise", "rank:map")
# A reranker scores ~100 candidates per query: on one thread that takes ~0.3 ms, on two the
# OpenMP hand-off alone took 16 ms on a busy 2-core machine (same booster, same rows)
PREDICT_THREADS = 1
_FRAMES: dict[str, Any] = {}  # "last" -> (key, TrainData, train frame, valid frame)


class XGBRankerRetriever(Reranker):
    family: ClassVar[str] = "xgb_ltr"
    PARAMS: ClassVar[dict[str, Param]] = {
        **reranker_params(
            candidates=100,
            components_help="component name -> model params; each one also gives features",
        ),
        "objective": Param("str", "rank:ndcg", choices=OBJECTIVES),
        "max_depth": Param("int", 6, min=1),
        "eta": Param("float", 0.1, min=0.0),
        "n_estimators": Param("int", 300, min=1),
        "early_stopping_rounds": Param("int", 30, min=0, help="0: no early stopping"),
        "min_child_weight": Param("float", 1.0, min=0.0),
        "subsample": Param("float", 1.0, min=0.0, max=1.0),
        "seed": Param("int", 42),
        "nthread": Param(
            "int", 2, min=1, help="training threads, fixed for determinism; scoring uses one"
        ),
        "report_every": Param("int", 10, min=1, help="rounds between valid reports (pruning)"),
        "features": Param("list[str]", list(GROUPS), help="feature groups: " + ", ".join(GROUPS)),
    }

    @staticmethod
    def check_params(model: str, params: dict[str, Any]) -> None:
        check_components(model, params, "xgb_ltr", first_stage=True)
        feats = params["features"]
        bad = [f for f in feats if f not in GROUPS]
        if bad or not feats:
            raise ConfigError(
                f"model {model!r}: param 'features' = {feats!r} (expected a non-empty list "
                f"of: {', '.join(GROUPS)})"
            )
        if params["subsample"] <= 0:
            raise ConfigError(f"model {model!r}: param 'subsample' must be > 0")

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        self.booster: Any = None
        self.feature_names: list[str] = []
        self.train_info: dict[str, Any] = {}
        self._item_text: tuple[pl.DataFrame, dict[str, str]] | None = None

    # --- features -------------------------------------------------------------------
    @staticmethod
    def feature_models(components: dict[str, Retriever]) -> Iterator[tuple[str, Retriever]]:
        for name, model in components.items():
            yield name, model
            if isinstance(model, HybridRetriever):
                for sub, inner in model.components.items():
                    yield f"{name}.{sub}", inner

    @contextlib.contextmanager
    def _encoding_each_query_once(self, components: dict[str, Retriever]) -> Iterator[None]:
        with contextlib.ExitStack() as scope:
            for _, model in self.feature_models(components):
                if isinstance(model, DenseRetriever):
                    scope.enter_context(model.reusing_query_embeddings())
            yield

    def _features(
        self,
        components: dict[str, Retriever],
        queries: pl.DataFrame,
        items: pl.DataFrame,
        n: int,
    ) -> pl.DataFrame:
        """(query_id, item_id, first-stage rank, features...) for the top-n candidates; each
        dense model encodes a query once however many features ask for it."""
        queries = queries.select(pl.col(QUERY_ID).cast(pl.String), pl.col(TEXT).cast(pl.String))
        groups = self.params["features"]
        stage = self.params["first_stage"]
        with self._encoding_each_query_once(components):
            known: dict[str, pl.DataFrame] = {}  # feature model -> its top-n run
            if isinstance(components[stage], HybridRetriever):
                first, inner = components[stage].retrieve_with_components(queries, n)
                # a component's top n is the head of its top max(depth, n): exact rankings
                known = {f"{stage}.{c}": r.filter(pl.col(RANK) <= n) for c, r in inner.items()}
            else:
                first = components[stage].retrieve(queries, n)
            known[stage] = first
            cands = first.sort(QUERY_ID, RANK).select(QUERY_ID, ITEM_ID, RANK)
            frame = cands
            if "scores" in groups:
                for fname, model in self.feature_models(components):
                    run = known.get(fname)
                    if run is None:
                        run = model.retrieve(queries, n)
                    exact = pair_scores(model, queries, cands)
                    feats = model_score_features(cands, run, fname, exact)
                    frame = frame.hstack(feats.drop(QUERY_ID, ITEM_ID))
        text_groups = [g for g in groups if g != "scores"]
        if text_groups:
            qids, texts = queries[QUERY_ID].to_list(), queries[TEXT].to_list()
            query_text = dict(zip(qids, texts, strict=True))
            item_text = self._text_of(items)
            pairs = cands.select(QUERY_ID, ITEM_ID).with_columns(
                pl.Series(QUERY_TEXT, [query_text.get(q) for q in cands[QUERY_ID].to_list()],
                          dtype=pl.String),
                pl.Series(ITEM_TEXT, [item_text.get(i) for i in cands[ITEM_ID].to_list()],
                          dtype=pl.String),
            )  # fmt: skip
            frame = frame.hstack(text_feature_frame(pairs, text_groups).drop(QUERY_ID, ITEM_ID))
        return frame

    def _text_of(self, items: pl.DataFrame) -> dict[str, str]:
        """item_id -> text, built once per catalog frame (a join against the whole catalog
        per call was a quarter of a single query's feature time)."""
        if self._item_text is None or self._item_text[0] is not items:
            ids = items[ITEM_ID].cast(pl.String).to_list()
            self._item_text = (items, dict(zip(ids, items[TEXT].to_list(), strict=True)))
        return self._item_text[1]

    # --- train@ -----------------------------------------------------------------------
    def fit(self, train: TrainData) -> None:
        import xgboost as xgb

        require_positive(train.train_qrels, "train_qrels", "training")
        valid = has_valid(train)
        tr, va = self._training_frames(train, valid)
        n = self.params["candidates"]
        if tr.height == 0:
            raise InputError(
                f"no positive (query, item) pair among the top {n} first-stage candidates "
                "of the training queries",
                path="train_qrels",
                expected="training queries whose relevant items (grade > 0) the first stage finds",
            )
        if va is not None and va.height == 0:
            raise InputError(
                f"no valid query has a relevant item among its top {n} first-stage candidates",
                path="valid_qrels",
                expected="judged valid queries whose relevant items the first stage finds",
            )
        names = [c for c in tr.columns if c not in (QUERY_ID, ITEM_ID, RANK, GRADE, "_qid")]
        p = self.params
        xparams = {
            "objective": p["objective"],
            "eval_metric": "ndcg@10",
            "eta": p["eta"],
            "max_depth": p["max_depth"],
            "min_child_weight": p["min_child_weight"],
            "subsample": p["subsample"],
            "seed": p["seed"],
            "nthread": p["nthread"],
            "tree_method": "hist",
            "ndcg_exp_gain": False,  # linear gain: graded float labels (0, 0.33, ...)
        }
        binary = p["objective"] == "rank:map"
        dtrain = dmatrix(tr, names, binary)
        evals = [(dtrain, "train")]
        if va is not None:
            evals.append((dmatrix(va, names, binary), "valid"))
        stop = p["early_stopping_rounds"] if va is not None and p["early_stopping_rounds"] else None
        history: dict[str, Any] = {}
        callbacks = [report_valid_callback(self.ctx, p["report_every"])] if va is not None else []
        booster = xgb.train(
            xparams,
            dtrain,
            num_boost_round=p["n_estimators"],
            evals=evals,
            early_stopping_rounds=stop,
            evals_result=history,
            verbose_eval=False,
            callbacks=callbacks,
        )
        rounds = booster.num_boosted_rounds()
        if stop is not None:
            rounds = booster.best_iteration + 1
            booster = booster[:rounds]
        booster.set_param({"nthread": PREDICT_THREADS})
        self.booster, self.feature_names = booster, names
        self.train_info = {
            "rounds": rounds,
            "train_pairs": tr.height,
            "train_queries": tr[QUERY_ID].n_unique(),
            "valid_pairs": 0 if va is None else va.height,
            "valid_queries": 0 if va is None else va[QUERY_ID].n_unique(),
            "valid_ndcg@10": (
                history["valid"]["ndcg@10"][rounds - 1] if "valid" in history else None
            ),
        }

    def _training_frames(
        self, train: TrainData, valid: bool
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """Labelled feature frames of the train (and valid) queries. They depend only on the
        candidate/feature params, not on the booster's, so the last ones are kept for the
        same data object: tuning trials that change only booster params reuse them."""
        import json

        p = self.params
        key = json.dumps(
            [p[COMPONENTS], p["first_stage"], p["candidates"], p["features"], valid],
            sort_keys=True,
            default=str,
        )
        hit = _FRAMES.get("last")
        if hit is not None and hit[0] == key and hit[1] is train:
            return hit[2], hit[3]
        items = check_items(train.items)
        inputs = [items, train.train_queries, train.train_qrels]
        if valid:
            inputs += [train.valid_queries, train.valid_qrels]
        # tune@ and train@ of one repro build the same frames: the second reads them back
        cache = FrameCache(self.ctx.cache_dir, "ltr_features", key + data_digest(*inputs))
        cached = cache.load(["train", "valid"])
        if cached is not None and cached["train"] is not None:
            tr, va = cached["train"], cached["valid"]
            if self.ctx.show_progress:
                print(f"{self.name}: features from the cache ({cache.dir})", file=sys.stderr)
        else:
            with built_models(p[COMPONENTS], items, self.ctx, "xgb_ltr") as comps:
                tr = self._labelled(comps, train.train_queries, train.train_qrels, items, "train")
                va = None
                if valid:
                    assert train.valid_queries is not None and train.valid_qrels is not None
                    va = self._labelled(
                        comps, train.valid_queries, train.valid_qrels, items, "valid"
                    )
            cache.save({"train": tr, "valid": va})
        _FRAMES["last"] = (key, train, tr, va)
        return tr, va

    def _labelled(
        self,
        comps: dict[str, Retriever],
        queries: pl.DataFrame,
        qrels: pl.DataFrame,
        items: pl.DataFrame,
        label: str,
    ) -> pl.DataFrame:
        """Features + grade (unjudged = 0) of the queries' candidates; queries without a
        relevant candidate dropped; sorted by query (xgboost wants contiguous groups)."""
        judged = qrels.select(
            pl.col(QUERY_ID).cast(pl.String),
            pl.col(ITEM_ID).cast(pl.String),
            pl.col(GRADE).cast(pl.Float64),
        )
        queries = queries.filter(pl.col(QUERY_ID).cast(pl.String).is_in(judged[QUERY_ID].implode()))
        if queries.height == 0:
            return pl.DataFrame()
        frame = by_query_blocks(
            queries,
            lambda block: self._features(comps, block, items, self.params["candidates"]),
            f"{self.name}: features {label}",
            enabled=self.ctx.show_progress,
        )
        frame = frame.join(judged, on=[QUERY_ID, ITEM_ID], how="left", maintain_order="left")
        frame = frame.with_columns(pl.col(GRADE).fill_null(0.0).clip(lower_bound=0.0))
        frame = frame.filter((pl.col(GRADE) > 0).any().over(QUERY_ID))
        return frame.sort(QUERY_ID, RANK, maintain_order=True)

    def save_extra(self, model_dir: Path) -> None:
        if self.booster is None:
            raise ConfigError(f"model {self.name!r}: call fit before save")
        super().save_extra(model_dir)
        self.booster.save_model(str(Path(model_dir) / BOOSTER_FILE))
        write_json(
            {"features": self.feature_names, "train": self.train_info},
            Path(model_dir) / LTR_FILE,
        )

    def load_extra(self, model_dir: Path) -> None:
        import json

        import xgboost as xgb

        model_dir = Path(model_dir)
        super().load_extra(model_dir)
        path = model_dir / BOOSTER_FILE
        if not path.exists():
            raise InputError("no such file", path=path, expected="an XGBoost JSON model (fit)")
        booster = xgb.Booster()
        booster.load_model(str(path))
        booster.set_param({"nthread": PREDICT_THREADS})
        meta = json.loads((model_dir / LTR_FILE).read_text())
        self.booster, self.feature_names = booster, list(meta["features"])
        self.train_info = meta.get("train", {})

    # --- retrieve -----------------------------------------------------------------------
    def scores(self, features: pl.DataFrame) -> Any:
        """Booster scores (float64 numpy) for a frame holding the feature columns."""
        import numpy as np

        if self.booster is None:
            raise ConfigError(f"model {self.name!r}: call fit or load first")
        x = features.select(self.feature_names).to_numpy().astype(np.float32)
        # in place: no DMatrix per call (half of a single query's booster time)
        return np.asarray(self.booster.inplace_predict(x), dtype=np.float64)

    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        items = self._require_items()  # the text features read item text
        require_columns(queries, [QUERY_ID, TEXT], "queries")
        if k < 1 or queries.height == 0:
            return empty_run()
        n = max(self.params["candidates"], k)
        frame = self._features(self.components, queries, items, n)
        if frame.height == 0:
            return empty_run()
        run = frame.select(QUERY_ID, ITEM_ID).with_columns(
            pl.Series(SCORE, self.scores(frame), dtype=pl.Float64)
        )
        return add_rank(run).filter(pl.col(RANK) <= k).select(RUN_COLUMNS)

    def feature_importance(self) -> dict[str, float]:
        """Total gain of every feature (0 for features no tree splits on)."""
        if self.booster is None:
            raise ConfigError(f"model {self.name!r}: call fit or load first")
        gain = self.booster.get_score(importance_type="total_gain")
        return {f: float(gain.get(f, 0.0)) for f in self.feature_names}

    def diagnostics(self, queries: pl.DataFrame, k: int) -> dict[str, float]:
        return {
            f"{name}.{key}": value
            for name, model in self.components.items()
            for key, value in model.diagnostics(queries, k).items()
        }
