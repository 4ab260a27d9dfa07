"""Which project source files a stage really runs.

A stage script's code is the static import closure of the script (imports inside functions
included, as grimp sees them) within the `shelflab` package, plus, for a stage that builds or
opens models, the modules of the model families its params name: the family registry imports
families lazily, so only the families a model uses count. `code_manifest` records that set as
file -> sha256; a pipeline stage that depends on its manifest reruns exactly when code it uses
changes, and an import added tomorrow is picked up without anyone editing a deps list.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import shelflab

PACKAGE = "shelflab"
PACKAGE_DIR = Path(shelflab.__file__).resolve().parent
# Importing this module makes a stage able to open any model of its params (by family name).
MODEL_LOADER = "shelflab.models.registry"


@cache
def _graph():
    import grimp

    return grimp.build_graph(PACKAGE, cache_dir=None)


def module_file(module: str) -> Path:
    """`shelflab.models.bm25` -> .../shelflab/models/bm25.py (a package -> its __init__.py)."""
    path = PACKAGE_DIR.joinpath(*module.split(".")[1:])
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def script_imports(script: Path) -> set[str]:
    """The project modules a script imports anywhere in its body (absolute imports only:
    stage scripts are not in a package)."""
    modules = _graph().modules
    found: set[str] = set()
    for node in ast.walk(ast.parse(Path(script).read_text(), filename=str(script))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def closure(modules: Iterable[str]) -> set[str]:
    """`modules`, everything they import transitively, and every package `__init__` on the way
    (importing `a.b.c` runs `a/__init__` and `a/b/__init__`)."""
    graph = _graph()
    todo, seen = list(modules), set()
    while todo:
        module = todo.pop()
        for name in _with_parents(module):
            if name in seen or name not in graph.modules:
                continue
            seen.add(name)
            todo.extend(graph.find_upstream_modules(name) - seen)
    return seen


def stage_modules(
    script: Path,
    models: Mapping[str, Mapping[str, Any]] | None = None,
    model: str | None = None,
) -> set[str]:
    """The modules a stage runs: its script's closure, plus the families of `model` (a stage
    of one model) or of every model in `models` when the script can open models by name."""
    from shelflab.models.registry import family_modules

    found = closure(script_imports(script))
    if model is not None:
        found |= closure(family_modules(model, (models or {})[model]))
    elif MODEL_LOADER in found:
        for name, spec in (models or {}).items():
            found |= closure(family_modules(name, spec))
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_manifest(
    script: Path,
    root: Path,
    models: Mapping[str, Mapping[str, Any]] | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """{"script": path, "files": {path: sha256}}: the script relative to `root` (its repo), the
    package's files relative to the folder holding the imported `shelflab` package."""
    script = Path(script).resolve()
    files = {script.relative_to(root.resolve()).as_posix(): sha256(script)}
    for module in stage_modules(script, models, model):
        path = module_file(module)
        files[path.relative_to(PACKAGE_DIR.parent).as_posix()] = sha256(path)
    return {
        "script": script.relative_to(root.resolve()).as_posix(),
        "model": model,
        "files": dict(sorted(files.items())),
    }
