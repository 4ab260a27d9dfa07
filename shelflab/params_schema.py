"""The schema of every params.yaml section except `models` (each model family validates its
own params: `shelflab.models.params`), checked by `config.load_params` before any work starts.

Unknown keys, wrong types, out-of-range values and cross-field rules (split fractions summing
to 1) are one `ConfigError` line naming the file and the key, e.g.
`params.yaml: data.grade_maping: unknown key (expected one of: dir, format, ...)`.
The `data` and `split` sections depend on the track (`mlflow.track`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from shelflab.errors import ConfigError
from shelflab.textnorm import NormalizeConfig

PositiveInt = Annotated[int, Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
Seed = Annotated[int, Field(strict=True)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Split = Literal["train", "valid", "test"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


# --- data, per track ------------------------------------------------------------------------
class SearchData(Section):
    name: str
    format: Literal["home_depot", "wands"] = "home_depot"
    dir: str
    grade_mapping: Literal["minus_one", "identity", "round"] = "minus_one"
    min_kept_fraction: Fraction = 0.5


class ReviewData(Section):
    name: str
    format: Literal["amazon_reviews"] = "amazon_reviews"
    dir: str
    reviews: str
    metadata: str | None = None
    query_fields: Annotated[list[Literal["summary", "body"]], Field(min_length=1)] = [
        "summary",
        "body",
    ]
    query_separator: str = ". "
    min_kept_fraction: Fraction = 0.5


class SequenceData(Section):
    name: str
    format: Literal["s3rec", "unisrec", "amazon_reviews"]
    dir: str
    sequences: str
    attributes: str | None = None
    datamaps: str | None = None
    metadata: str | None = None
    k_core: PositiveInt = 5
    # item ids replaced by a seeded permutation at ingest (null: the source ids, whose order
    # can leak time: shelflab.data_io.relabel)
    relabel_seed: Seed | None = 0
    min_kept_fraction: Fraction = 0.5


# --- split, per track -----------------------------------------------------------------------
class Lockbox(Section):
    # a seeded share of the test queries that no stage evaluates (`shelflab lockbox`)
    lockbox_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    lockbox_seed: Seed = 0


class Fractions(Lockbox):
    fractions: Annotated[list[Fraction], Field(min_length=3, max_length=3)]

    @model_validator(mode="after")
    def _sum_to_one(self) -> Fractions:
        if not math.isclose(sum(self.fractions), 1.0, abs_tol=1e-9):
            raise ValueError(
                f"fractions {self.fractions} sum to {sum(self.fractions):g}, expected 1 "
                "(train, valid, test)"
            )
        if self.fractions[0] <= 0:
            raise ValueError("fractions: the train fraction must be > 0")
        return self


class SearchSplit(Fractions):
    seed: Seed = 42


class ReviewSplit(Fractions):
    method: Literal["time"] = "time"


class SequenceSplit(Lockbox):
    method: Literal["leave_one_out"] = "leave_one_out"
    min_length: Annotated[int, Field(strict=True, ge=3)] = 3


# --- text ----------------------------------------------------------------------------------
# one switch per text-normalisation step, as textnorm defines them
Enrich = create_model(
    "Enrich",
    __base__=Section,
    **{f.name: (bool, f.default) for f in dataclasses.fields(NormalizeConfig)},
)


class Keywords(Section):
    backend: Literal["tfidf", "llm"] = "tfidf"
    max_keywords: PositiveInt = 15
    ngrams: PositiveInt = 2
    min_chars: NonNegativeInt = 3
    min_reviews: NonNegativeInt = 2
    min_reviews_below: NonNegativeInt = 3
    max_df: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5


class Llm(Section):
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: PositiveInt = 8
    cache_dir: str = ".cache/shelflab/llm"


class ItemText(Section):
    fields: Annotated[list[str], Field(min_length=1)]
    max_chars: dict[str, PositiveInt] = {}
    keywords: Keywords = Keywords()
    summaries: bool = False
    llm: Llm = Llm()


# --- evaluation, registry ------------------------------------------------------------------
class Resampling(Section):
    n_resamples: PositiveInt = 1000
    confidence: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95
    seed: Seed = 0


class Significance(Section):
    method: Literal["randomization", "bootstrap"] = "randomization"
    n_resamples: PositiveInt = 10000
    seed: Seed = 0


class Evaluate(Section):
    splits: Annotated[list[Split], Field(min_length=1)] = ["valid", "test"]
    k: PositiveInt = 100
    metrics: Annotated[list[str], Field(min_length=1)]
    curve_ks: list[PositiveInt] = [1, 5, 10, 20, 50, 100]
    latency_queries: NonNegativeInt = 20
    relevance_threshold: Annotated[float, Field(gt=0.0)] = 1.0
    bootstrap: Resampling = Resampling()


class Leaderboard(Section):
    split: Split = "test"
    metric: str = "ndcg@10"
    baseline: str | None = None
    metrics: Annotated[list[str], Field(min_length=1)] = ["ndcg@10"]
    significance: Significance = Significance()


class Guardrail(Section):
    max_drop: Annotated[float, Field(ge=0.0)] | None = None
    max_ratio: Annotated[float, Field(gt=0.0)] | None = None
    max: float | None = None


class Promote(Section):
    split: Split = "test"
    metric: str = "ndcg@10"
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.05
    min_delta: float = 0.0
    significance: Significance = Significance()
    guardrails: dict[str, Guardrail] = {}


class Mlflow(Section):
    track: Literal["search", "reviews", "nextitem"]
    tracking_uri: str | None = None


# --- tuning ----------------------------------------------------------------------------------
class TuneModel(Section):
    trials: PositiveInt = 20
    timeout: Annotated[float, Field(gt=0.0)] | None = None
    space: dict[str, dict[str, Any]] | None = None  # checked by tuning.spaces
    fixed: dict[str, Any] = {}
    catalog: PositiveInt | None = None
    queries: PositiveInt | None = None


class Tune(Section):
    metric: str = "ndcg@10"
    split: Literal["valid", "train"] = "valid"
    seed: Seed = 0
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "halving", "none"] = "median"
    k: PositiveInt = 100
    storage: str | None = None
    models: dict[str, TuneModel | None] = {}


# --- drift -----------------------------------------------------------------------------------
class DriftEmbeddings(Section):
    model: str = "all-MiniLM-L6-v2"
    method: Literal["model", "mmd", "distance", "ratio"] = "mmd"
    threshold: float | None = None
    max_rows: PositiveInt = 2000
    seed: Seed = 0
    batch_size: PositiveInt = 64
    max_seq_length: PositiveInt = 128
    projection: Literal["pca", "tsne"] = "pca"


class DriftBatch(Section):
    path: str
    split: Split | None = None


class Drift(Section):
    model: str = "champion"
    metric: str = "ndcg@10"
    columns: list[str] | None = None
    stattest: str | None = None
    stattest_threshold: float | None = None
    drift_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    max_rows: PositiveInt | None = None
    sample_seed: Seed = 0
    embeddings: DriftEmbeddings = DriftEmbeddings()
    fail_on_drift: bool = False
    batches: dict[str, DriftBatch] = {}


TRACK_SECTIONS: dict[str, dict[str, type[Section]]] = {
    "search": {"data": SearchData, "split": SearchSplit, "enrich": Enrich},
    "reviews": {
        "data": ReviewData,
        "split": ReviewSplit,
        "enrich": Enrich,
        "item_text": ItemText,
        "drift": Drift,
    },
    "nextitem": {"data": SequenceData, "split": SequenceSplit},
}
COMMON_SECTIONS: dict[str, type[Section]] = {
    "tune": Tune,
    "evaluate": Evaluate,
    "leaderboard": Leaderboard,
    "promote": Promote,
    "mlflow": Mlflow,
}


def check_params(params: dict[str, Any], path: str | Path) -> None:
    """ConfigError (one line, naming `path` and the key) unless every section of `params` but
    `models` fits its schema; the sections allowed depend on `mlflow.track`."""
    track = (params.get("mlflow") or {}).get("track")
    if track not in TRACK_SECTIONS:
        raise ConfigError(
            f"{path}: mlflow.track: {track!r} is not a track "
            f"(expected one of: {', '.join(TRACK_SECTIONS)})"
        )
    schemas = {**TRACK_SECTIONS[track], **COMMON_SECTIONS}
    known = sorted([*schemas, "models"])
    for name, section in params.items():
        if name == "models":
            continue
        if name not in schemas:
            raise ConfigError(
                f"{path}: {name}: unknown section for the {track} track "
                f"(expected one of: {', '.join(known)})"
            )
        try:
            schemas[name].model_validate(section if section is not None else {})
        except ValidationError as exc:
            raise ConfigError(f"{path}: {_first_problem(name, exc, schemas[name])}") from None


def _first_problem(section: str, exc: ValidationError, schema: type[BaseModel]) -> str:
    errors = exc.errors()
    # a misspelt key also makes the real one "missing": name the misspelling first
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [str(p) for p in err["loc"]]
    key = ".".join([section, *loc])
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        fields = _fields_at(schema, loc[:-1])
        expected = f" (expected one of: {', '.join(fields)})" if fields else ""
        return f"{key}: unknown key{expected}"
    if err["type"] == "missing":
        return f"{key}: missing"
    message = err["msg"].removeprefix("Value error, ")
    return f"{key}: {message}, got {value!r}" if loc else f"{section}: {message}"


def _fields_at(schema: type[BaseModel], loc: list[str]) -> list[str]:
    """The field names of the nested model at `loc` under `schema` (best effort: through
    nested models, optional ones and dict values)."""
    model: Any = schema
    parts = list(loc)
    while parts:
        field = getattr(model, "model_fields", {}).get(parts.pop(0))
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
        if isinstance(model, tuple):  # dict[str, Model]: the next part is a key
            model = model[0]
            if not parts:
                return []
            parts.pop(0)
    return sorted(getattr(model, "model_fields", {}))


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside `annotation` (X, X | None), or (X,) for dict[str, X | None]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is dict:
        inner = _model_in(get_args(annotation)[1])
        return (inner,) if inner is not None and not isinstance(inner, tuple) else None
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None
