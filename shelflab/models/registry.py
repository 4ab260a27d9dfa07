"""Family registry: params.yaml entry -> Retriever, and re-opening models from their directories.

Importing this module is cheap: family modules import their heavy libraries (torch,
sentence-transformers, chromadb, bm25s) lazily inside methods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shelflab.errors import ConfigError, InputError, UnknownModelError
from shelflab.models.base import MODEL_FILE, ModelContext, Retriever
from shelflab.models.biencoder_ft import BiEncoderFT
from shelflab.models.bm25 import BM25Retriever
from shelflab.models.cross_encoder import CrossEncoderRetriever
from shelflab.models.dense import DenseRetriever
from shelflab.models.hybrid import HybridRetriever
from shelflab.models.itemknn import ItemKNNRetriever
from shelflab.models.params import resolve_params
from shelflab.models.popularity import PopularityRetriever
from shelflab.models.sasrec import SASRecRetriever
from shelflab.models.sasrec_semantic import SemanticSASRecRetriever
from shelflab.models.seq_rerank import SequenceRerankRetriever
from shelflab.models.two_tower import TwoTowerRetriever
from shelflab.models.xgb_ltr import XGBRankerRetriever

FAMILIES: dict[str, type[Retriever]] = {}


def register(cls: type[Retriever]) -> type[Retriever]:
    """Class decorator / function: make a family available to `create` and `load`."""
    FAMILIES[cls.family] = cls
    return cls


for _cls in (
    BM25Retriever,
    DenseRetriever,
    HybridRetriever,
    XGBRankerRetriever,
    BiEncoderFT,
    CrossEncoderRetriever,
    PopularityRetriever,
    ItemKNNRetriever,
    SASRecRetriever,
    SemanticSASRecRetriever,
    TwoTowerRetriever,
    SequenceRerankRetriever,
):
    register(_cls)


def family_of(name: str, spec: Mapping[str, Any]) -> str:
    """The spec's `family`; when absent, a model named after a family is of that family."""
    family = spec.get("family") if isinstance(spec, Mapping) else None
    if family is None:
        if name in FAMILIES:
            return name
        known = ", ".join(sorted(FAMILIES))
        raise ConfigError(f"model {name!r}: missing 'family' (one of: {known})")
    if family not in FAMILIES:
        err = UnknownModelError(str(family), list(FAMILIES))
        err.args = (
            f"model {name!r}: unknown family {family!r} "
            f"(expected one of: {', '.join(sorted(FAMILIES))})",
        )
        raise err
    return family


def validate_spec(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a params.yaml entry without building anything; returns the full params."""
    cls = FAMILIES[family_of(name, spec)]
    return resolve_params(name, cls.family, cls.PARAMS, spec, getattr(cls, "check_params", None))


def create(name: str, spec: Mapping[str, Any], ctx: ModelContext | None = None) -> Retriever:
    """A fresh model from a params.yaml entry (`{"family": "bm25", "k1": 1.2, ...}`)."""
    cls = FAMILIES[family_of(name, spec)]
    params = validate_spec(name, spec)
    return cls(name, params, ctx or ModelContext())


def load(model_dir: str | Path, ctx: ModelContext | None = None) -> Retriever:
    """Re-open a model saved with `Retriever.save` (reads shelflab-model.json, then
    `load_extra`). Params are re-validated, so defaults added since are filled in."""
    model_dir = Path(model_dir)
    path = model_dir / MODEL_FILE
    try:
        meta = json.loads(path.read_text())
        name, family, params = meta["name"], meta["family"], meta["params"]
    except FileNotFoundError:
        raise InputError(
            "no such file", path=path, expected="a model directory written by `Retriever.save`"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(
            f"unreadable model file ({exc})",
            path=path,
            expected='JSON with "name", "family", "params"',
        ) from None
    model = create(name, {**params, "family": family}, ctx)
    model.load_extra(model_dir)
    return model


def open_model(
    model_dir: str | Path, index_dir: str | Path, ctx: ModelContext | None = None
) -> Retriever:
    """`load` + `open_index`: a model ready to `retrieve`."""
    model = load(model_dir, ctx)
    model.open_index(Path(index_dir))
    return model
