"""`hybrid`: a composite that fuses the runs of its component models.

The components are whole model specs (in params.yaml, YAML anchors to other entries:
`components: {bm25: *bm25, dense: *dense}`), so the hybrid's DVC stages depend on exactly the
params they use. Components live inside the hybrid's own directories
(`<model_dir>/components/<name>`, `<index_dir>/components/<name>`); expensive work is not
repeated because dense item embeddings come from the shared content-addressed cache.

Each component retrieves max(depth, k) candidates per query; the fused run keeps the top k.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from shelflab.atomic import write_json
from shelflab.errors import ConfigError
from shelflab.models.base import INDEX_FILE, Retriever, TrainData, read_index_meta
from shelflab.models.fusion import METHODS, NORMS, fuse
from shelflab.models.params import Param

COMPONENTS = "components"


class HybridRetriever(Retriever):
    family: ClassVar[str] = "hybrid"
    PARAMS: ClassVar[dict[str, Param]] = {
        "components": Param(
            "models",
            {"bm25": {"family": "bm25"}, "dense": {"family": "dense"}},
            help="component name -> its model params",
        ),
        "method": Param("str", "rrf", choices=METHODS),
        "rrf_k": Param("float", 60.0, min=0.0),
        "weights": Param(
            "list[float]", None, nullable=True, help="one per component; default equal weights"
        ),
        "norm": Param("str", "minmax", choices=NORMS, help="weighted only"),
        "depth": Param("int", 200, min=1),
    }

    @staticmethod
    def check_params(model: str, params: dict[str, Any]) -> None:
        from shelflab.models.registry import validate_spec

        comps = params["components"]
        if not comps:
            raise ConfigError(f"model {model!r}: param 'components' is empty")
        for name, spec in comps.items():
            if spec.get("family") == HybridRetriever.family:
                raise ConfigError(f"model {model!r}: component {name!r} is itself a hybrid")
            # full params with defaults, so the saved spec records every value used
            comps[name] = {"family": spec.get("family", name), **validate_spec(name, spec)}
        w = params["weights"]
        if w is not None and len(w) != len(comps):
            raise ConfigError(
                f"model {model!r}: param 'weights' has {len(w)} values for {len(comps)} components"
            )

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        from shelflab.models.registry import create

        self.components = {n: create(n, spec, ctx) for n, spec in params[COMPONENTS].items()}

    def fit(self, train: TrainData) -> None:
        for model in self.components.values():
            model.fit(train)

    def save_extra(self, model_dir: Path) -> None:
        for name, model in self.components.items():
            sub = Path(model_dir) / COMPONENTS / name
            sub.mkdir(parents=True)
            model.save(sub)

    def load_extra(self, model_dir: Path) -> None:
        from shelflab.models.registry import load

        for name in self.components:
            self.components[name] = load(Path(model_dir) / COMPONENTS / name, self.ctx)

    def build_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        for name, model in self.components.items():
            sub = Path(index_dir) / COMPONENTS / name
            sub.mkdir(parents=True)
            model.build_index(items, sub)
        write_json(
            {"family": self.family, "name": self.name, "components": sorted(self.components)},
            Path(index_dir) / INDEX_FILE,
        )

    def open_index(self, index_dir: Path) -> None:
        built = read_index_meta(index_dir, self.family).get("components")
        if built != sorted(self.components):
            raise ConfigError(
                f"model {self.name!r}: index at {index_dir} lists components "
                f"{built}, params say {sorted(self.components)}; rebuild it"
            )
        for name, model in self.components.items():
            model.open_index(Path(index_dir) / COMPONENTS / name)

    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        depth = max(self.params["depth"], k)
        runs = [model.retrieve(queries, depth) for model in self.components.values()]
        p = self.params
        return fuse(runs, p["method"], k=k, rrf_k=p["rrf_k"], weights=p["weights"], norm=p["norm"])

    def diagnostics(self, queries: pl.DataFrame, k: int) -> dict[str, float]:
        return {
            f"{name}.{key}": value
            for name, model in self.components.items()
            for key, value in model.diagnostics(queries, k).items()
        }

    def close(self) -> None:
        for model in self.components.values():
            closer = getattr(model, "close", None)
            if closer is not None:
                closer()
