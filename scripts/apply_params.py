"""Merge a params overlay into a params.yaml in place, keeping its comments and YAML anchors
(so a composite that embeds a component with `*bm25` follows the component's new values).

An overlay may add whole models. A quoted `"*name"` value in the overlay stands for the
params.yaml node anchored `&name`, so an added composite shares its component's params
exactly as if it had been written with the alias in params.yaml:

    models:
      biencoder_ft: {family: biencoder_ft, miner: {bm25: "*bm25"}, ...}

A mapping tagged `!replace` replaces the params' mapping instead of merging into it:

    drift:
      batches: !replace {all_beauty: {path: ..., split: null}}

and a key tagged `!drop` is removed (a model the profile does not run):

    models:
      sasrec_semantic: !drop

Applying the same overlay again is a no-op for its `!drop` keys: the params file records each
overlay applied to it in a `# applied: <file name>` line at its top, so a second `--full` run
of scripts/run.sh does not stop on a model the first one removed, while a `!drop` of a key that
was never there (a typo) is still refused.

    python scripts/apply_params.py params.thorough.yaml params.yaml
"""

import sys
from collections.abc import Mapping
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

REPLACE = "!replace"
DROP = "!drop"


def anchors(node, found: dict | None = None) -> dict:
    """name -> the params node that carries the YAML anchor `&name`."""
    found = {} if found is None else found
    anchor = getattr(getattr(node, "anchor", None), "value", None)
    if anchor:
        found.setdefault(anchor, node)
    children = node.values() if isinstance(node, Mapping) else node
    for child in children if isinstance(node, Mapping | list) else []:
        anchors(child, found)
    return found


def resolve(value, named: dict):
    """The overlay value with each "*name" string replaced by the anchored params node."""
    if isinstance(value, str) and value.startswith("*"):
        if value[1:] not in named:
            sys.exit(f"apply_params: {value!r}: no node anchored &{value[1:]} in the params file")
        return named[value[1:]]
    if isinstance(value, Mapping):
        for key in list(value):
            value[key] = resolve(value[key], named)
    return value


APPLIED = "# applied: "


def merge(base, overlay, reapplied: bool = False) -> None:
    """Overlay mappings merge into the params' key by key; one tagged `!replace` takes the
    place of the params' mapping whole (e.g. another dataset's drift batches); a key tagged
    `!drop` is removed (`reapplied`: the overlay was applied before, so it may be gone)."""
    for key, value in overlay.items():
        tag = getattr(getattr(value, "tag", None), "value", None)
        if tag == DROP:
            if key in base:
                del base[key]
            elif not reapplied:
                sys.exit(f"apply_params: {key!r} tagged {DROP} is not in the params file")
            continue
        replace = tag == REPLACE
        if replace:
            value = CommentedMap(value)  # the same entries, without the tag
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping) and not replace:
            merge(base[key], value, reapplied)
        else:
            base[key] = value


def main(overlay_file: str, params_file: str) -> int:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    overlay = yaml.load(Path(overlay_file).read_text()) or {}
    text = Path(params_file).read_text()
    mark = APPLIED + Path(overlay_file).name
    reapplied = mark in text.splitlines()
    params = yaml.load(text)
    merge(params, resolve(overlay, anchors(params)), reapplied)
    with Path(params_file).open("w") as out:
        if not reapplied:
            out.write(mark + "\n")
        yaml.dump(params, out)
    print(f"{params_file}: applied {overlay_file}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: apply_params.py OVERLAY.yaml PARAMS.yaml")
    sys.exit(main(*sys.argv[1:]))
