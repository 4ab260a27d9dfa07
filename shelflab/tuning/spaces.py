"""Search spaces: params.yaml `tune.models.<name>.space` -> Optuna suggestions -> model spec.

A space maps a *key* to a distribution. The key addresses a param of the model spec:

- `k1`                     top-level param
- `components.bm25.k1`     nested param (dots walk into mappings, e.g. a hybrid's components)
- `weights[0]`             one element of a list param (the list must exist in the spec)

Distributions (`type`):

- `float`: `low`, `high`, optional `log: true` or `step`
- `int`: `low`, `high`, optional `log: true` or `step`
- `categorical`: `choices` (strings, numbers, booleans or null)
- `split`: one float w in [`low`, `high`] (default [0, 1]); the addressed list param becomes
  `[w, 1 - w]`. Two fusion weights that sum to 1 are one degree of freedom, so
  `weights: {type: split, low: 0.1, high: 0.9}` searches the bm25/dense balance directly.

The Optuna param name is the key itself, so `study.best_params` reads like the space.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from shelflab.errors import ConfigError

TYPES = ("float", "int", "categorical", "split")
_INDEX = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<i>\d+)\]$")


def check_space(model: str, space: Any) -> dict[str, dict[str, Any]]:
    """Validate a space mapping; returns it as plain dicts (clear errors for typos)."""
    where = f"tune.models.{model}.space"
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(f"{where}: expected a non-empty mapping of param -> distribution")
    out: dict[str, dict[str, Any]] = {}
    for key, dist in space.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: param names must be strings, got {key!r}")
        if not isinstance(dist, Mapping) or dist.get("type") not in TYPES:
            raise ConfigError(f"{where}.{key}: expected a mapping with type one of {TYPES}")
        d = dict(dist)
        kind = d["type"]
        if kind == "categorical":
            if not isinstance(d.get("choices"), list) or not d["choices"]:
                raise ConfigError(f"{where}.{key}: categorical needs a non-empty 'choices' list")
        else:
            if kind == "split":
                d.setdefault("low", 0.0)
                d.setdefault("high", 1.0)
            for bound in ("low", "high"):
                v = d.get(bound)
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise ConfigError(f"{where}.{key}: {kind} needs numeric 'low' and 'high'")
            if kind == "int" and not all(isinstance(d[b], int) for b in ("low", "high")):
                raise ConfigError(f"{where}.{key}: int bounds must be integers")
            if d["low"] > d["high"]:
                raise ConfigError(f"{where}.{key}: low {d['low']} > high {d['high']}")
            if d.get("log") and d.get("step") is not None:
                raise ConfigError(f"{where}.{key}: 'log' and 'step' cannot be combined")
        unknown = set(d) - {"type", "low", "high", "log", "step", "choices"}
        if unknown:
            raise ConfigError(f"{where}.{key}: unknown option(s) {', '.join(sorted(unknown))}")
        out[key] = d
    return out


def suggest(trial: Any, space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Ask the trial for one value per space key (in the space's order)."""
    values: dict[str, Any] = {}
    for key, d in space.items():
        kind = d["type"]
        if kind == "categorical":
            values[key] = trial.suggest_categorical(key, list(d["choices"]))
        elif kind == "int":
            values[key] = trial.suggest_int(
                key, d["low"], d["high"], step=d.get("step") or 1, log=bool(d.get("log"))
            )
        else:  # float, split
            values[key] = trial.suggest_float(
                key, float(d["low"]), float(d["high"]), step=d.get("step"), log=bool(d.get("log"))
            )
    return values


def apply_params(
    spec: Mapping[str, Any],
    values: Mapping[str, Any],
    space: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A deep copy of `spec` with each key's value set (see the module doc for the syntax).
    `space` tells which keys are `split` params; without it a key whose current spec value
    is a 2-element list and whose value is a number is treated as a split."""
    out = copy.deepcopy(dict(spec))
    for key, value in values.items():
        kind = (space or {}).get(key, {}).get("type")
        _set(out, key, value, kind)
    return out


def _set(spec: dict[str, Any], key: str, value: Any, kind: str | None) -> None:
    parts = key.split(".")
    node: Any = spec
    for part in parts[:-1]:
        node = _child(node, part, key, create=True)
    last = parts[-1]
    m = _INDEX.match(last)
    if m:
        seq = node.get(m["name"]) if isinstance(node, dict) else None
        i = int(m["i"])
        if not isinstance(seq, list) or i >= len(seq):
            raise ConfigError(
                f"tune: key {key!r}: {m['name']!r} is not a list with an element {i} in the spec"
            )
        seq[i] = value
        return
    if not isinstance(node, dict):
        raise ConfigError(f"tune: key {key!r} does not address a mapping in the spec")
    current = node.get(last)
    is_split = kind == "split" or (
        kind is None
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and isinstance(current, list)
        and len(current) == 2
    )
    node[last] = [float(value), 1.0 - float(value)] if is_split else value


def _child(node: Any, part: str, key: str, create: bool) -> Any:
    m = _INDEX.match(part)
    if m:
        seq = node.get(m["name"]) if isinstance(node, dict) else None
        i = int(m["i"])
        if not isinstance(seq, list) or i >= len(seq):
            raise ConfigError(f"tune: key {key!r}: no list element {m['name']}[{i}] in the spec")
        return seq[i]
    if not isinstance(node, dict):
        raise ConfigError(f"tune: key {key!r} does not address a mapping in the spec")
    if part not in node:
        if not create:
            raise ConfigError(f"tune: key {key!r}: no {part!r} in the spec")
        node[part] = {}
    return node[part]
