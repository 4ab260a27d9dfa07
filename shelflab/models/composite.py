"""Composite models (hybrid, rerankers): their components are whole model specs (YAML anchors
in params.yaml), created, saved, indexed and opened inside the composite's own directories
(`<model_dir>/components/<name>`, `<index_dir>/components/<name>`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from shelflab.atomic import write_json
from shelflab.errors import ConfigError
from shelflab.models.base import INDEX_FILE, Retriever, TrainData, read_index_meta

COMPONENTS = "components"


def check_components(
    model: str, params: dict[str, Any], family: str, first_stage: bool = False
) -> None:
    """Validate `params["components"]` in place (each a full spec with defaults, so the saved
    spec records every value used, and `chroma` off unless it is searched); no component of
    the composite's own family; with `first_stage`, `params["first_stage"]` must name a
    component."""
    from shelflab.models.registry import validate_spec
    from shelflab.models.training import fit_spec

    comps = params[COMPONENTS]
    if not comps:
        raise ConfigError(f"model {model!r}: param 'components' is empty")
    for name, spec in comps.items():
        if spec.get("family") == family:
            raise ConfigError(f"model {model!r}: component {name!r} is itself a {family}")
        # a component is only ever searched as its spec says: no Chroma collection that its
        # exact search would never read (a minute per index of the full catalog)
        comps[name] = fit_spec({"family": spec.get("family", name), **validate_spec(name, spec)})
    if first_stage and params["first_stage"] not in comps:
        raise ConfigError(
            f"model {model!r}: param 'first_stage' = {params['first_stage']!r} is not a "
            f"component (components: {', '.join(comps)})"
        )


class Composite(Retriever):
    """Owns `self.components` (name -> Retriever). Subclasses add their own state through
    `save_extra`/`load_extra` (calling super) and `build_own_index`/`open_own_index`."""

    def __init__(self, name: str, params: dict[str, Any], ctx: Any) -> None:
        super().__init__(name, params, ctx)
        from shelflab.models.registry import create

        self.components: dict[str, Retriever] = {
            n: create(n, spec, ctx) for n, spec in params[COMPONENTS].items()
        }

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
        self.build_own_index(items, Path(index_dir))
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
        self.open_own_index(Path(index_dir))

    def build_own_index(self, items: pl.DataFrame, index_dir: Path) -> None:
        """Catalog-side state of the composite itself (none by default)."""

    def open_own_index(self, index_dir: Path) -> None:
        """Load what `build_own_index` wrote."""

    def diagnostics(self, queries: pl.DataFrame, k: int) -> dict[str, float]:
        return {
            f"{name}.{key}": value
            for name, model in self.components.items()
            for key, value in model.diagnostics(queries, k).items()
        }

    def close(self) -> None:
        for model in self.components.values():
            model.close()
