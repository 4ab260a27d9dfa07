"""A built pipeline (model_dir + index_dir) as an MLflow pyfunc model, registered as
`shelflab-<track>-<dataset>`: models-from-code (`pyfunc_model.py`), the pipeline's own files
as artifacts (safetensors, bm25s, NumPy/Chroma, XGBoost JSON: no pickle), a signature with
param `k`, an input example, version tags, a model card and, as the version's description, the
card's head."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.contract import HISTORY, ITEM_ID, QUERY_ID, RANK, SCORE, TEXT
from shelflab.errors import InputError
from shelflab.registry.model_card import CARD_FILE, model_card, version_summary
from shelflab.registry.tracking import use_tracking_uri

ARTIFACT_NAME = "pipeline"  # the logged model's name inside its run
REGISTERED_DESCRIPTION = (
    "ShelfLab pipelines (first stage + optional reranker); aliases `champion` / `challenger` "
    "are moved by `shelflab promote`. Each version's description is the head of its model card."
)
DEFAULT_K = 10
CODE_FILE = Path(__file__).with_name("pyfunc_model.py")


def registered_name(track: str, dataset: str) -> str:
    return f"shelflab-{track}-{dataset}"


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def signature(query_input: str = TEXT):
    """Input query_id + the model's query column: `text` (string) or `history` (array of item
    ids, next-item models); output the run; param k."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import Array

    query = ColSpec(Array("string"), HISTORY) if query_input == HISTORY else ColSpec("string", TEXT)
    return ModelSignature(
        inputs=Schema([ColSpec("string", QUERY_ID), query]),
        outputs=Schema(
            [
                ColSpec("string", QUERY_ID),
                ColSpec("string", ITEM_ID),
                ColSpec("double", SCORE),
                ColSpec("long", RANK),
            ]
        ),
        params=ParamSchema([ParamSpec("k", "long", DEFAULT_K)]),
    )


# --- loading (runs inside the pyfunc) ------------------------------------------------------
def open_pipeline(
    model_dir: str | Path, index_dir: str | Path
) -> tuple[Any, dict[str, Any], pl.DataFrame | None]:
    """(model, text normalisation, id map): the id map of a next-item pipeline on relabelled
    ids (`data_io.relabel`), None for one on the source's ids."""
    from shelflab.data_io.relabel import SOURCE_IDS_FILE, read_id_map
    from shelflab.models import ModelContext, open_model
    from shelflab.pipeline.built import load_text_normalization

    cache = Path(os.environ.get("SHELFLAB_CACHE_DIR", Path(tempfile.gettempdir()) / "shelflab"))
    model = open_model(Path(model_dir), Path(index_dir), ModelContext(cache_dir=cache))
    id_map = read_id_map(Path(index_dir) / SOURCE_IDS_FILE)
    return model, load_text_normalization(Path(index_dir)), id_map


def predict(
    model: Any,
    normalization: dict[str, Any],
    model_input: Any,
    params: Any,
    id_map: pl.DataFrame | None = None,
):
    """DataFrame (pandas or polars) of query_id, text (or history) -> pandas run. With an id
    map, histories and the run's items are the source's ids."""
    from shelflab.textnorm import normalize_frame

    k = int((params or {}).get("k", DEFAULT_K))
    if k < 1:
        raise InputError(f"param k must be at least 1, got {k}")
    frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
    if getattr(model, "query_input", TEXT) == HISTORY:
        return _predict_next_item(model, frame, k, id_map)
    missing = [c for c in (QUERY_ID, TEXT) if c not in frame.columns]
    if missing:
        raise InputError(
            f"model input lacks column(s) {missing}", expected=f"columns {QUERY_ID}, {TEXT}"
        )
    queries = frame.select(pl.col(QUERY_ID).cast(pl.String), pl.col(TEXT).cast(pl.String))
    if queries[TEXT].null_count():
        raise InputError("model input has empty query text", expected="a text for every query")
    queries = normalize_frame(queries, normalization).select(QUERY_ID, TEXT)
    run = model.retrieve(queries, k)
    return run.select(QUERY_ID, ITEM_ID, SCORE, pl.col(RANK).cast(pl.Int64)).to_pandas()


def _predict_next_item(model: Any, frame: pl.DataFrame, k: int, id_map: pl.DataFrame | None):
    from shelflab.pipeline.built import retrieve_in_source_ids

    if QUERY_ID not in frame.columns or HISTORY not in frame.columns:
        raise InputError(
            f"model input lacks {QUERY_ID} or {HISTORY}",
            expected=f"columns {QUERY_ID}, {HISTORY} (a list of item ids, oldest first)",
        )
    queries = frame.select(
        pl.col(QUERY_ID).cast(pl.String), pl.col(HISTORY).cast(pl.List(pl.String))
    )
    run = retrieve_in_source_ids(model, queries, k, id_map)
    return run.select(QUERY_ID, ITEM_ID, SCORE, pl.col(RANK).cast(pl.Int64)).to_pandas()


# --- logging (evaluate@) -------------------------------------------------------------------
def log_pipeline(
    *,
    tracking_uri: str,
    run_id: str,
    name: str,
    model_dir: Path,
    index_dir: Path,
    example: pl.DataFrame,
    card: str,
    tags: dict[str, str],
    query_input: str = TEXT,
    description: str = "",
) -> str:
    """Log the pipeline into the evaluation run `run_id`, register it under `name`, tag the
    version and give it `description` (markdown); returns the version number."""
    import mlflow
    from mlflow.tracking import MlflowClient

    use_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    try:
        registered = client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(
            name,
            tags={k: tags[k] for k in ("track", "dataset") if k in tags},
            description=REGISTERED_DESCRIPTION,
        )
    else:
        if not registered.description:  # made elsewhere, or before ShelfLab described them
            client.update_registered_model(name, description=REGISTERED_DESCRIPTION)
    with tempfile.TemporaryDirectory() as tmp:
        card_path = Path(tmp) / CARD_FILE
        card_path.write_text(card)
        with mlflow.start_run(run_id=run_id), _registry_chatter_dropped():
            mlflow.log_artifact(str(card_path))
            info = mlflow.pyfunc.log_model(
                name=ARTIFACT_NAME,
                python_model=str(CODE_FILE),
                artifacts={
                    "model": str(model_dir),
                    "index": str(index_dir),
                    "model_card": str(card_path),
                },
                signature=signature(query_input),
                input_example=example.select(QUERY_ID, query_input).to_pandas(),
                pip_requirements=[_requirement()],
                registered_model_name=name,
            )
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if description:
        client.update_model_version(name, version, description=description)
    return version


# what mlflow.register_model prints on stderr for every version (the stage says it once)
REGISTRY_CHATTER = re.compile(
    r"^(Registered model '.*' already exists|Successfully registered model|Created version )"
)


@contextlib.contextmanager
def _registry_chatter_dropped() -> Iterator[None]:
    """Drops MLflow's per-version registry lines from stderr; anything else is passed on."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    finally:
        kept = [
            line for line in captured.getvalue().splitlines() if not REGISTRY_CHATTER.match(line)
        ]
        if kept:
            print("\n".join(kept), file=sys.stderr)


KNOWN_LIMITS = [
    "Judgments are pooled (only the products shown for a query were judged): an unjudged "
    "result counts as non-relevant, which understates models that surface new products.",
    "CIs are over the queries of one split; a small split gives wide intervals.",
    "Latency is measured on the evaluation machine, one query at a time, after one warm-up.",
]


def register_pipeline(
    *,
    tracking_uri: str,
    run_id: str,
    registered: str,
    model_key: str,
    model: Any,
    model_dir: Path,
    index_dir: Path,
    summary: dict[str, Any],
    per_query: pl.DataFrame,
    queries: pl.DataFrame,
    example: pl.DataFrame,
    data_info: dict[str, Any],
    metrics: list[str],
    tags: dict[str, str],
) -> str:
    """Model card + pyfunc + version tags for one evaluated pipeline (the evaluation run
    `run_id`); returns the version. `example`: enriched queries (raw_text is the input)."""
    from shelflab.registry.tracking import MODEL_TAG, metric_key

    # the card and the version's description are built from the same facts
    facts = {
        "model": model_key,
        "family": model.family,
        "registered": registered,
        "summary": summary,
        "data": data_info,
        "metrics": metrics,
    }
    card = model_card(
        **facts, params=model.params, per_query=per_query, queries=queries, limits=KNOWN_LIMITS
    )
    description = version_summary(**facts)
    test = summary.get("test", {})
    version_tags = {
        **tags,
        MODEL_TAG: model_key,
        "params_hash": params_hash(model.params),
        **{metric_key("test", m): f"{test[m]['mean']:.6f}" for m in metrics if m in test},
    }
    query_input = getattr(model, "query_input", TEXT)
    if query_input == TEXT:
        text = "raw_text" if "raw_text" in example.columns else TEXT
        example = example.select(QUERY_ID, pl.col(text).alias(TEXT))
    return log_pipeline(
        tracking_uri=tracking_uri,
        run_id=run_id,
        name=registered,
        model_dir=model_dir,
        index_dir=index_dir,
        example=example.select(QUERY_ID, query_input),
        card=card,
        tags=version_tags,
        query_input=query_input,
        description=description,
    )


def _requirement() -> str:
    from importlib.metadata import version

    return f"shelflab=={version('shelflab')}"
