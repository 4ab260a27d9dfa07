"""`hybrid`: a composite that fuses the runs of its component models.

The components are whole model specs (in params.yaml, YAML anchors to other entries:
`components: {bm25: *bm25, dense: *dense}`), so the hybrid's DVC stages depend on exactly the
params they use. Components live inside the hybrid's own directories
(`<model_dir>/components/<name>`, `<index_dir>/components/<name>`); expensive work is not
repeated because dense item embeddings come from the shared content-addressed cache.

Each component retrieves max(depth, k) candidates per query; the fused run keeps the top k.
"""

from __future__ import annotations

from typing import Any, ClassVar

import polars as pl

from shelflab.errors import ConfigError
from shelflab.models.composite import Composite, check_components
from shelflab.models.fusion import METHODS, NORMS, fuse
from shelflab.models.params import Param


class HybridRetriever(Composite):
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
        check_components(model, params, "hybrid")
        w, n = params["weights"], len(params["components"])
        if w is not None and len(w) != n:
            raise ConfigError(
                f"model {model!r}: param 'weights' has {len(w)} values for {n} components"
            )

    def retrieve(self, queries: pl.DataFrame, k: int) -> pl.DataFrame:
        return self.retrieve_with_components(queries, k)[0]

    def retrieve_with_components(
        self, queries: pl.DataFrame, k: int
    ) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
        """The fused top-k and each component's own run (top max(depth, k)), which a reranker
        reads as features instead of retrieving every component a second time."""
        depth = max(self.params["depth"], k)
        runs = {name: model.retrieve(queries, depth) for name, model in self.components.items()}
        p = self.params
        fused = fuse(
            list(runs.values()), p["method"], k=k, rrf_k=p["rrf_k"], weights=p["weights"],
            norm=p["norm"],
        )  # fmt: skip
        return fused, runs
