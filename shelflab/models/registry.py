"""Family registry: params.yaml entry -> Retriever, and re-opening models from their directories.

Importing this module is cheap: family modules import their heavy libraries (torch,
sentence-transformers, chromadb, bm25s) lazily inside methods.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shelflab.errors import ConfigError, InputError, UnknownModelError
from shelflab.models.base import MODEL_FILE, ModelContext, Retriever
from shelflab.models.params import resolve_params

# family -> "module:Class". Imported on first use, so a stage that trains one family imports
# (and, in DVC, depends on) that family's modules only.
BUILTIN_FAMILIES: dict[str, str] = {
    "bm25": "shelflab.models.bm25:BM25Retriever",
    "dense": "shelflab.models.dense:DenseRetriever",
    "hybrid": "shelflab.models.hybrid:HybridRetriever",
    "xgb_ltr": "shelflab.models.xgb_ltr:XGBRankerRetriever",
    "biencoder_ft": "shelflab.models.biencoder_ft:BiEncoderFT",
    "cross_encoder": "shelflab.models.cross_encoder:CrossEncoderRetriever",
    "popularity": "shelflab.models.popularity:PopularityRetriever",
    "itemknn": "shelflab.models.itemknn:ItemKNNRetriever",
    "sasrec": "shelflab.models.sasrec:SASRecRetriever",
    "sasrec_semantic": "shelflab.models.sasrec_semantic:SemanticSASRecRetriever",
    "two_tower": "shelflab.models.two_tower:TwoTowerRetriever",
    "seq_rerank": "shelflab.models.seq_rerank:SequenceRerankRetriever",
    "mmoe": "shelflab.models.mmoe:MMoERetriever",
    "llm_rerank": "shelflab.models.llm_rerank:LLMRerankRetriever",
    "tiger": "shelflab.models.tiger:TigerRetriever",
}


class _Families(Mapping[str, type[Retriever]]):
    """family -> Retriever class, importing a built-in family's module on first access."""

    def __init__(self, paths: Mapping[str, str]) -> None:
        self._paths = dict(paths)
        self._loaded: dict[str, type[Retriever]] = {}

    def __getitem__(self, family: str) -> type[Retriever]:
        if family not in self._loaded:
            module, _, attr = self._paths[family].partition(":")
            self._loaded[family] = getattr(importlib.import_module(module), attr)
        return self._loaded[family]

    def __contains__(self, family: object) -> bool:
        return family in self._paths

    def __iter__(self):
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def module_of(self, family: str) -> str:
        """The module that defines `family` (without importing it)."""
        return self._paths[family].partition(":")[0]

    def add(self, cls: type[Retriever]) -> None:
        self._paths[cls.family] = f"{cls.__module__}:{cls.__qualname__}"
        self._loaded[cls.family] = cls


FAMILIES = _Families(BUILTIN_FAMILIES)


def register(cls: type[Retriever]) -> type[Retriever]:
    """Class decorator / function: make a family available to `create` and `load`."""
    FAMILIES.add(cls)
    return cls


def sub_specs(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every model spec nested in `spec` (components, miners, ...), depth first: any mapping
    value that carries a `family` is a model."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for value in spec.values():
        if not isinstance(value, Mapping):
            continue
        for name, sub in value.items():
            if isinstance(sub, Mapping) and "family" in sub:
                found.append((str(name), sub))
                found.extend(sub_specs(sub))
    return found


def family_modules(name: str, spec: Mapping[str, Any]) -> list[str]:
    """The modules that define the families a params.yaml entry builds (itself + nested)."""
    names = [family_of(name, spec)] + [family_of(n, s) for n, s in sub_specs(spec)]
    return sorted({FAMILIES.module_of(f) for f in names})


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
