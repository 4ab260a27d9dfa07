"""Every stage of every dvc.yaml depends on every project file it imports.

For each resolved stage (foreach expanded, through DVC's own parser) the files it runs are its
script's import closure plus its model's families (shelflab.pipeline.provenance). Each must be
a dep itself, lie under a dep folder, or be listed in a code manifest the stage depends on; and
the committed manifests must match the code, so a stale one cannot hide a change.
"""

import json
from pathlib import Path

import pytest
import yaml

from shelflab.pipeline.provenance import code_manifest, module_file, stage_modules

REPO = Path(__file__).resolve().parents[3]
TRACKS = [REPO, REPO / "tracks" / "reviews", REPO / "tracks" / "nextitem"]


def stages():
    from dvc.repo import Repo

    with Repo(str(REPO)) as repo:
        for stage in repo.index.stages:
            if stage.name == "code" or not stage.cmd:
                continue
            deps = [Path(d.fs_path) for d in stage.deps]
            yield stage.addressing, Path(stage.path).parent, stage.cmd, stage.name, deps


STAGES = list(stages())
FIELDS = ("address", "track", "cmd", "name", "deps")
IDS = [s[0] for s in STAGES]


def script_of(cmd: str, track: Path) -> Path:
    (script,) = [w for w in cmd.split() if w.endswith(".py")]
    return (track / script).resolve()


def model_of(name: str, models: dict) -> str | None:
    key = name.partition("@")[2]
    return key if key in models else None


def covered(deps: list[Path]) -> set[Path]:
    """Files the deps cover: manifests' files (when the manifest exists) + the deps."""
    files: set[Path] = set()
    for dep in deps:
        if dep.suffix == ".json" and dep.parent.name == "manifests" and dep.is_file():
            files |= {(REPO / f).resolve() for f in json.loads(dep.read_text())["files"]}
    return files


def uncovered(required: set[Path], deps: list[Path]) -> set[Path]:
    in_manifests = covered(deps)
    dirs = [d for d in deps if d.is_dir()]
    return {
        f
        for f in required
        if f not in in_manifests and f not in deps and not any(f.is_relative_to(d) for d in dirs)
    }


def required_files(track: Path, cmd: str, name: str) -> set[Path]:
    models = yaml.safe_load((track / "params.yaml").read_text()).get("models", {})
    script = script_of(cmd, track)
    modules = stage_modules(script, models, model_of(name, models))
    return {script} | {module_file(m) for m in modules}


def test_every_track_has_stages():
    tracks = {track for _, track, *_ in STAGES}
    assert tracks == {t.resolve() for t in TRACKS}


@pytest.mark.parametrize(FIELDS, STAGES, ids=IDS)
def test_stage_depends_on_all_it_imports(address, track, cmd, name, deps):
    missing = uncovered(required_files(track, cmd, name), deps)
    assert not missing, f"{address} imports files its deps miss: {sorted(map(str, missing))}"


@pytest.mark.parametrize(FIELDS, STAGES, ids=IDS)
def test_committed_manifest_matches_the_code(address, track, cmd, name, deps):
    models = yaml.safe_load((track / "params.yaml").read_text()).get("models", {})
    (manifest,) = [d for d in deps if d.parent.name == "manifests"]
    rerun = f"dvc repro -f {track / 'dvc.yaml'}:code"
    assert manifest.is_file(), f"{address}: {manifest} missing: run `{rerun}`"
    fresh = code_manifest(script_of(cmd, track), REPO, models, model_of(name, models))
    assert json.loads(manifest.read_text()) == fresh, f"{manifest} is stale: run `dvc repro`"


def test_a_removed_dep_is_found():
    """The check has teeth: without its manifest, train@bm25 misses the bm25 family module."""
    ((_, track, cmd, name, deps),) = [s for s in STAGES if s[0] == "train@bm25"]
    bm25 = REPO / "shelflab" / "models" / "bm25.py"
    assert uncovered(required_files(track, cmd, name), deps) == set()
    without = [d for d in deps if d.parent.name != "manifests"]
    assert bm25 in uncovered(required_files(track, cmd, name), without)


def test_a_model_stage_uses_only_its_families():
    """Editing sasrec.py reruns the models built on SASRec, not itemknn or popularity."""
    track = REPO / "tracks" / "nextitem"
    models = yaml.safe_load((track / "params.yaml").read_text())["models"]
    train = REPO / "stages" / "train.py"
    sasrec = "shelflab.models.sasrec"
    assert sasrec in stage_modules(train, models, "sasrec")
    assert sasrec in stage_modules(train, models, "sasrec_semantic")
    assert sasrec not in stage_modules(train, models, "itemknn")
    assert sasrec not in stage_modules(train, models, "popularity")
