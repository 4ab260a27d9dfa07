"""The model specs a bench script runs: params.yaml entries, bench-wide overrides, then the
command line's `--set model.key=value` (YAML values)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml


def model_specs(
    models: Mapping[str, Mapping[str, Any]],
    names: Iterable[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    sets: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    specs = {n: {**models[n], **(overrides or {}).get(n, {})} for n in names}
    for item in sets:
        key, value = item.split("=", 1)
        name, param = key.split(".", 1)
        if name not in specs:
            raise SystemExit(
                f"--set {item}: {name!r} is not one of the models run ({', '.join(specs)})"
            )
        specs[name][param] = yaml.safe_load(value)
    return specs
