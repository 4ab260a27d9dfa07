"""Declarative, validated model parameters (the keys of a params.yaml `models.<name>` entry).

Each family declares `PARAMS: dict[str, Param]`; `resolve_params` checks a spec against it
and returns the full parameter dict (defaults filled in), which is what gets saved in
`shelflab-model.json`, so a model directory always records every value it ran with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shelflab.errors import ConfigError

RESERVED = ("family",)


@dataclass(frozen=True)
class Param:
    """kind: "int" | "float" | "bool" | "str" | "list[str]" | "list[float]" | "models"
    ("models": a mapping of component name -> params.yaml model entry, for composites)."""

    kind: str
    default: Any = None
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    help: str = ""

    def check(self, model: str, key: str, value: Any) -> Any:
        def bad(expected: str) -> ConfigError:
            return ConfigError(f"model {model!r}: param {key!r} = {value!r} (expected {expected})")

        if value is None:
            if self.nullable:
                return None
            raise bad(f"a {self.kind}")
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise bad("true or false")
        elif self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad("an integer")
        elif self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad("a number")
            value = float(value)
        elif self.kind == "str":
            if not isinstance(value, str):
                raise bad("a string")
        elif self.kind in ("list[str]", "list[float]"):
            if not isinstance(value, list | tuple):
                raise bad(f"a list of {self.kind[5:-1]}")
            if self.kind == "list[str]" and not all(isinstance(v, str) for v in value):
                raise bad("a list of strings")
            if self.kind == "list[float]":
                if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
                    raise bad("a list of numbers")
                value = [float(v) for v in value]
            value = list(value)
        elif self.kind == "models":
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
            ):
                raise bad("a mapping of model name -> model params (use YAML anchors: *bm25)")
            value = {k: dict(v) for k, v in value.items()}
        else:  # pragma: no cover - programming error
            raise AssertionError(f"unknown param kind {self.kind}")
        if self.choices is not None and value not in self.choices:
            raise bad("one of " + ", ".join(repr(c) for c in self.choices))
        if self.min is not None and value < self.min:
            raise bad(f">= {self.min}")
        if self.max is not None and value > self.max:
            raise bad(f"<= {self.max}")
        return value


def resolve_params(
    model: str,
    family: str,
    schema: Mapping[str, Param],
    spec: Mapping[str, Any],
    check: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Validate `spec` (a params.yaml entry, `family` key allowed) against `schema`.

    Unknown keys and bad values raise ConfigError naming the model and the key; `check` runs
    cross-parameter checks on the completed dict."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"model {model!r}: expected a mapping of params, got {spec!r}")
    unknown = [k for k in spec if k not in schema and k not in RESERVED]
    if unknown:
        known = ", ".join(sorted(schema)) or "none"
        raise ConfigError(
            f"model {model!r}: unknown param {unknown[0]!r} for family {family!r} (known: {known})"
        )
    out: dict[str, Any] = {}
    for key, param in schema.items():
        value = spec.get(key, param.default)
        if isinstance(value, list):
            value = list(value)
        out[key] = param.check(model, key, value)
    if check is not None:
        check(model, out)
    return out
