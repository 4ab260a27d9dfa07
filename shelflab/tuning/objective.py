"""The tuning objective: a model spec -> its score on the VALID split (never test).

A trial builds the model on the pipeline data (fit on train, `build_index` of the whole
catalog into a temp dir), retrieves the valid queries at depth `k` and scores them with the
evaluation harness. Runs are cached per process by the resolved spec, so a repeated
configuration costs nothing. A hybrid's component runs do not depend on the fusion params:
each component's valid run is computed once per process and every trial only fuses.

Low fidelity for encoders (`catalog: N` in a model's tune entry): trials index only N items,
every item judged in the tuning split plus a seeded sample of the others, instead of embedding
the whole catalog with each trial's new weights (minutes per trial on 54,667 titles). Every
trial of the study sees the same catalog, so trials stay comparable; train@ and evaluate@ use
the whole catalog. `queries: N` likewise scores every trial on the same seeded sample of N
judged queries of the tuning split (a reranker scores each query's candidates with a
transformer: minutes per trial on 919 valid queries).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.errors import ConfigError
from shelflab.models.base import ModelContext, TrainData
from shelflab.models.training import ON_VALID

OnValid = Callable[[int, float], None]
TUNABLE_SPLITS = ("valid", "train")


class Evaluator:
    """Scores model specs on one split; holds the per-process run cache."""

    def __init__(
        self,
        data: TrainData,
        *,
        metric: str = "ndcg@10",
        split: str = "valid",
        k: int = 100,
        relevance_threshold: float = 1.0,
        ctx: ModelContext | None = None,
        catalog: int | None = None,
        n_queries: int | None = None,
        seed: int = 0,
    ) -> None:
        if split not in TUNABLE_SPLITS:
            raise ConfigError(
                f"tune.split = {split!r}: tuning may only use {' or '.join(TUNABLE_SPLITS)} "
                "(the test split is kept for the final evaluation)"
            )
        queries = data.valid_queries if split == "valid" else data.train_queries
        qrels = data.valid_qrels if split == "valid" else data.train_qrels
        if queries is None or qrels is None or queries.height == 0:
            raise ConfigError(f"tune: the {split} split has no queries")
        if n_queries is not None:
            queries, qrels = query_sample(queries, qrels, n_queries, seed, relevance_threshold)
        self.data = data
        query_input = [c for c in ("text", "history") if c in queries.columns][:1]
        self.queries = queries.select("query_id", *query_input)
        self.qrels = qrels
        self.metric = metric
        self.k = k
        self.relevance_threshold = relevance_threshold
        self.ctx = ctx or ModelContext(show_progress=False)
        self.index_items = data.items if catalog is None else trial_catalog(
            data.items, qrels, catalog, seed
        )  # fmt: skip
        self._runs: dict[str, pl.DataFrame] = {}

    # --- runs -----------------------------------------------------------------------
    def run_for(
        self, name: str, spec: Mapping[str, Any], depth: int, on_valid: OnValid | None = None
    ) -> pl.DataFrame:
        """fit -> build_index (temp dir) -> retrieve, cached by (resolved spec, depth).
        `on_valid(step, value)` receives an iterative trainer's valid scores (pruning)."""
        from shelflab.models.registry import create, family_of, validate_spec

        resolved = {"family": family_of(name, spec), **validate_spec(name, spec)}
        key = json.dumps([resolved, depth], sort_keys=True, default=str)
        if key not in self._runs:
            ctx = self.ctx
            if on_valid is not None:
                ctx = dataclasses.replace(ctx, extra={**ctx.extra, ON_VALID: on_valid})
            model = create(name, resolved, ctx)
            try:
                model.fit(self.data)
                with tempfile.TemporaryDirectory(prefix=f"shelflab-tune-{name}-") as tmp:
                    model.build_index(self.index_items, Path(tmp))
                    run = model.retrieve(self.queries, depth)
            finally:
                model.close()
            self._runs[key] = run
        return self._runs[key]

    def model_run(
        self, name: str, spec: Mapping[str, Any], on_valid: OnValid | None = None
    ) -> pl.DataFrame:
        from shelflab.models.fusion import fuse
        from shelflab.models.registry import family_of, validate_spec

        if family_of(name, spec) != "hybrid":
            return self.run_for(name, spec, self.k, on_valid)
        p = validate_spec(name, spec)  # components resolved, fusion params checked
        depth = max(p["depth"], self.k)
        runs = [self.run_for(n, s, depth) for n, s in p["components"].items()]
        return fuse(
            runs, p["method"], k=self.k, rrf_k=p["rrf_k"], weights=p["weights"], norm=p["norm"]
        )

    # --- score ------------------------------------------------------------------------
    def score(self, name: str, spec: Mapping[str, Any], on_valid: OnValid | None = None) -> float:
        from shelflab.evaluation.harness import evaluate

        run = self.model_run(name, spec, on_valid)
        if run.height == 0:
            return 0.0
        result = evaluate(
            self.qrels,
            run,
            [self.metric],
            relevance_threshold=self.relevance_threshold,
            qrels_source=f"{self.metric} qrels",
            run_source=f"{name} run",
        )
        return float(result.means[self.metric])


def trial_catalog(items: pl.DataFrame, qrels: pl.DataFrame, size: int, seed: int) -> pl.DataFrame:
    """The items judged in `qrels` plus a seeded sample of the others, `size` items in all (or
    just the judged ones when they are more), in catalog order."""
    import numpy as np

    if items.height <= size:
        return items
    judged = items["item_id"].cast(pl.String).is_in(qrels["item_id"].cast(pl.String).implode())
    others = np.flatnonzero(~judged.to_numpy())
    extra = max(0, size - int(judged.sum()))
    rng = np.random.default_rng(seed)
    keep = judged.to_numpy().copy()
    keep[rng.choice(others, min(extra, len(others)), replace=False)] = True
    return items.filter(pl.Series(keep))


def query_sample(
    queries: pl.DataFrame, qrels: pl.DataFrame, size: int, seed: int, threshold: float = 1.0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A seeded sample of `size` queries with a relevant judgment (grade >= `threshold`; all of
    them when they are fewer), in split order, and their qrels: queries and judgments stay
    paired, so no sampled-out query scores 0 and every sampled one is evaluated."""
    relevant = qrels.filter(pl.col("grade").cast(pl.Float64) >= threshold)["query_id"]
    judged = queries.filter(
        pl.col("query_id").cast(pl.String).is_in(relevant.cast(pl.String).implode())
    )
    if judged.height > size:
        judged = judged.with_row_index("_row").sample(n=size, seed=seed).sort("_row").drop("_row")
    keep = judged["query_id"].cast(pl.String).implode()
    return judged, qrels.filter(pl.col("query_id").cast(pl.String).is_in(keep))
