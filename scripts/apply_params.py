"""Merge a params overlay into a params.yaml in place, keeping its comments and YAML anchors
(so a composite that embeds a component with `*bm25` follows the component's new values).

    python scripts/apply_params.py params.thorough.yaml params.yaml
"""

import sys
from collections.abc import Mapping
from pathlib import Path

from ruamel.yaml import YAML


def merge(base, overlay) -> None:
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            merge(base[key], value)
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
    params = yaml.load(Path(params_file).read_text())
    merge(params, overlay)
    with Path(params_file).open("w") as out:
        yaml.dump(params, out)
    print(f"{params_file}: applied {overlay_file}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: apply_params.py OVERLAY.yaml PARAMS.yaml")
    sys.exit(main(*sys.argv[1:]))
