"""code: one code manifest per stage of this folder's dvc.yaml, under manifests/.

`manifests/<stage>.json`, or `manifests/<stage>@<model>.json` for a stage that runs once per
model, lists every project source file the stage runs (its script's import closure plus its
model's families, see shelflab.pipeline.provenance) with its sha256. Each stage depends on its
manifest, so editing `shelflab/models/sasrec.py` reruns the stages of the models that use
SASRec and nothing else, and no hand-written deps list can miss an import.
"""

import json
import re
from pathlib import Path

import yaml

from shelflab.atomic import atomic_dir
from shelflab.cli.stage import run_stage
from shelflab.config import load_params
from shelflab.pipeline.provenance import code_manifest

CODE_DIR = Path("manifests")
MODELS_LOOP = "${models}"


def stage_scripts(dvc_yaml: Path) -> dict[str, tuple[Path, bool]]:
    """stage -> (its `python X.py` script, whether it runs once per model)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    found: dict[str, tuple[Path, bool]] = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        match = re.search(r"python\s+(\S+\.py)", body["cmd"])
        if match is None or name == "code":
            continue
        script = (dvc_yaml.parent / match.group(1)).resolve()
        found[name] = (script, stage.get("foreach") == MODELS_LOOP)
    return found


def main() -> None:
    here = Path.cwd()
    repo = Path(__file__).resolve().parents[1]
    models = load_params().get("models", {})
    written = 0
    with atomic_dir(here / CODE_DIR) as out:
        for stage, (script, per_model) in stage_scripts(here / "dvc.yaml").items():
            names = list(models) if per_model else [None]
            for model in names:
                manifest = code_manifest(script, repo, models, model)
                file = out / (f"{stage}@{model}.json" if model else f"{stage}.json")
                file.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
                written += 1
    print(f"code: {written} manifests in {CODE_DIR}/")  # run_stage prints wall and CPU


if __name__ == "__main__":
    run_stage("code", main)
