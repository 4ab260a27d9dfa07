"""What the trainable families share: input checks, private first-stage copies built during
fit, candidate mining with labels, valid-split scoring and the progress hook that lets Optuna
prune an iterative trainer.

Progress hook: a trainer calls `report_valid(ctx, step, value)` after each validation; when
`ctx.extra["on_valid"]` is set (the tuner sets it to a function that calls `trial.report` and
raises `optuna.TrialPruned` when the pruner says so), it is called with (step, value). An
exception it raises ends the training.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.contract import GRADE, ITEM_ID, QUERY_ID, RANK, TEXT
from shelflab.errors import InputError
from shelflab.models.base import ModelContext, Retriever, TrainData

ON_VALID = "on_valid"


def report_valid(ctx: ModelContext, step: int, value: float) -> None:
    """Tell the caller (e.g. an Optuna trial) the valid score after `step`; may raise."""
    hook = ctx.extra.get(ON_VALID)
    if hook is not None:
        hook(step, value)


def record_validation(
    model: Any,
    epoch: int,
    losses: list[float],
    score: float,
    start: float,
    stopper: Any,
    progress: Any,
) -> bool:
    """After an epoch's valid NDCG@10: the training-curve entry (`model.history_log`), the
    tuner's hook, the progress line's field; True when early stopping (`stopper`) says stop."""
    import time

    import numpy as np

    model.history_log.append({"epoch": epoch, "loss": float(np.mean(losses)),
                              "valid_ndcg@10": score,
                              "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
    report_valid(model.ctx, epoch, score)
    progress.fields["valid_ndcg@10"] = score
    return bool(stopper.update(epoch, score))


def require_positive(qrels: pl.DataFrame | None, source: str, split: str) -> None:
    """Refuse a split with no (query, item) pair of grade > 0."""
    if qrels is None or qrels.height == 0 or not (qrels[GRADE].cast(pl.Float64) > 0).any():
        raise InputError(
            f"the {split} split has no positive (query, item) pair",
            path=source,
            expected="judged queries with at least one relevant item (grade > 0)",
        )


def has_valid(train: TrainData) -> bool:
    """A valid split was given; when it was, it must hold a positive pair."""
    given = train.valid_queries is not None and train.valid_queries.height > 0
    if given:
        require_positive(train.valid_qrels, "valid_qrels", "valid")
    return given


def early_stopping_split(train: TrainData, cap: int, seed: int):
    """The valid (queries, qrels) a trainer stops on: all of them, or `cap` users sampled with
    `seed` (0: all); None without a valid split."""
    if not has_valid(train):
        return None
    queries, qrels = train.valid_queries, train.valid_qrels
    if cap and queries.height > cap:
        queries = queries.sample(cap, seed=seed)
        qrels = qrels.join(queries.select(QUERY_ID), on=QUERY_ID, how="semi")
    return queries, qrels


def judged_queries(queries: pl.DataFrame, qrels: pl.DataFrame) -> pl.DataFrame:
    """The queries (query_id, text as strings) that have at least one relevant judgment."""
    rel = qrels.filter(pl.col(GRADE).cast(pl.Float64) > 0)[QUERY_ID].cast(pl.String)
    return queries.select(
        pl.col(QUERY_ID).cast(pl.String), pl.col(TEXT).cast(pl.String).fill_null("")
    ).filter(pl.col(QUERY_ID).is_in(rel.implode()))


def fit_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec of a component or of a private copy built during fit: no Chroma collection
    unless searched."""
    spec = dict(spec)
    if spec.get("family") == "dense" and spec.get("search") != "chroma":
        spec["chroma"] = False
    if "components" in spec:
        spec["components"] = {n: fit_spec(s) for n, s in spec["components"].items()}
    return spec


@contextlib.contextmanager
def built_models(
    specs: Mapping[str, Mapping[str, Any]], items: pl.DataFrame, ctx: ModelContext, tag: str
) -> Iterator[dict[str, Retriever]]:
    """Fresh models from `specs`, fitted and indexed over `items` in a temporary directory
    (removed afterwards): the first stages a trainer mines candidates from."""
    from shelflab.models.registry import create

    with tempfile.TemporaryDirectory(prefix=f"{tag}-") as tmp:
        models = {n: create(n, fit_spec(s), ctx) for n, s in specs.items()}
        try:
            for name, model in models.items():
                sub = Path(tmp) / name
                sub.mkdir()
                model.build_index(items, sub)
            yield models
        finally:
            for model in models.values():
                model.close()


def labelled_candidates(
    first_stage: Retriever, queries: pl.DataFrame, qrels: pl.DataFrame, depth: int
) -> pl.DataFrame:
    """(query_id, item_id, rank, grade) of the first stage's top-`depth` items for the queries;
    unjudged items get grade 0, negative grades are clipped to 0."""
    judged = qrels.select(
        pl.col(QUERY_ID).cast(pl.String),
        pl.col(ITEM_ID).cast(pl.String),
        pl.col(GRADE).cast(pl.Float64),
    ).unique([QUERY_ID, ITEM_ID], keep="first")
    run = first_stage.retrieve(queries.select(QUERY_ID, TEXT), depth)
    return (
        run.select(QUERY_ID, ITEM_ID, RANK)
        .join(judged, on=[QUERY_ID, ITEM_ID], how="left", maintain_order="left")
        .with_columns(pl.col(GRADE).fill_null(0.0).clip(lower_bound=0.0))
        .sort(QUERY_ID, RANK, maintain_order=True)
    )


def score_run(run: pl.DataFrame, qrels: pl.DataFrame, metric: str = "ndcg@10") -> float:
    """Mean `metric` of a run over the judged queries (harness semantics; 0 for an empty run)."""
    from shelflab.evaluation.harness import evaluate

    if run.height == 0:
        return 0.0
    result = evaluate(qrels, run, [metric], qrels_source="valid qrels", run_source="valid run")
    return float(result.means[metric])


def seed_everything(seed: int) -> None:
    """Python, numpy and torch RNGs; deterministic torch kernels where they exist."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def valid_ndcg(model: Retriever, queries: pl.DataFrame, qrels: pl.DataFrame) -> float:
    """NDCG@10 of `model`'s run on early-stopping queries, its network (`net`) in eval mode
    (the trainer switches it back to train mode)."""
    model.net.eval()  # type: ignore[attr-defined]
    return score_run(model.retrieve(queries, 10), qrels, "ndcg@10")


def start_training(params: Mapping[str, Any], ctx: ModelContext) -> str:
    """What every torch trainer does first: seed the RNGs (`seed`), set torch's CPU threads
    (`threads` where the family has it; 0 = torch's default) and pick the device (`device`,
    "auto" = the context's). Returns the device."""
    import torch

    from shelflab.models.device import resolve_device

    seed_everything(params["seed"])
    if params.get("threads"):
        torch.set_num_threads(params["threads"])
    return resolve_device(params["device"], ctx.device)


POOL_BATCHES = 16  # batches sorted by length together (length_bucketed_batches)


def length_bucketed_batches(lengths: Any, size: int, rng: Any) -> list[Any]:
    """Shuffled batches (index arrays) of examples of similar length, so that each batch is
    padded to its own longest example: examples are drawn at random (numpy Generator `rng`) in
    pools of POOL_BATCHES batches, sorted by length within the pool and cut into batches, and
    the batches of all pools shuffled (the `group_by_length` of the HF trainers)."""
    import numpy as np

    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    pool = size * POOL_BATCHES
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def bucketed_batch_count(n: int, size: int) -> int:
    """How many batches length_bucketed_batches makes of `n` examples (the same every epoch)."""
    pool = size * POOL_BATCHES
    return sum(-(-min(pool, n - start) // size) for start in range(0, n, pool))
