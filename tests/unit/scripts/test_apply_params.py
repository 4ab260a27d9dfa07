"""scripts/apply_params.py: each track's params.thorough.yaml merged into a copy of its
params.yaml (what `run.sh --thorough` does) gives params every stage accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shelflab.config import load_params
from shelflab.models.registry import validate_spec
from shelflab.tuning.settings import model_config

REPO = Path(__file__).resolve().parents[3]
TRACKS = [".", "tracks/reviews", "tracks/nextitem"]


def apply(overlay: Path, params: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "apply_params.py"), str(overlay), str(params)],
        capture_output=True,
        text=True,
    )


OVERLAYS = sorted(
    str(p.relative_to(REPO)) for t in TRACKS for p in (REPO / t).glob("params.*.yaml")
)


def test_every_track_has_its_profiles():
    for track in TRACKS:
        prefix = "" if track == "." else f"{track}/"
        assert {f"{prefix}params.thorough.yaml", f"{prefix}params.full.yaml"} <= set(OVERLAYS)
    assert "tracks/reviews/params.full-gift-cards.yaml" in OVERLAYS
    assert "tracks/nextitem/params.full-beauty.yaml" in OVERLAYS


@pytest.mark.parametrize("overlay_file", OVERLAYS)
def test_every_overlay_gives_valid_params(overlay_file, tmp_path):
    """run.sh --thorough / --full TRACK[:PROFILE] apply these; each must give params every
    stage accepts (a data path is not checked here: the full files are outside the repo)."""
    track = str(Path(overlay_file).parent)
    quick = load_params(REPO / track / "params.yaml")
    target = tmp_path / "params.yaml"
    target.write_text((REPO / track / "params.yaml").read_text())
    done = apply(REPO / overlay_file, target)
    assert done.returncode == 0, done.stderr
    merged = load_params(target)
    overlay = yaml.load((REPO / overlay_file).read_text(), Loader=_TaggedLoader)
    dropped = {name for name, value in overlay.get("models", {}).items() if value == DROPPED}
    assert set(quick["models"]) - dropped == set(quick["models"]) & set(merged["models"])
    assert not dropped & set(merged["models"])
    for name, spec in merged["models"].items():
        validate_spec(name, spec)
    for name in merged["tune"]["models"]:
        assert name in merged["models"], name
        model_config(merged["tune"], name)
    assert merged["evaluate"]["latency_queries"] == overlay["evaluate"]["latency_queries"]


DROPPED = "<dropped>"


class _TaggedLoader(yaml.SafeLoader):
    """Reads `!replace` mappings as plain ones, `!drop` values as DROPPED."""


_TaggedLoader.add_constructor("!replace", yaml.SafeLoader.construct_mapping)
_TaggedLoader.add_constructor("!drop", lambda loader, node: DROPPED)


def test_replace_tag_takes_the_mapping_whole(tmp_path):
    target = tmp_path / "params.yaml"
    target.write_text((REPO / "tracks/reviews/params.yaml").read_text())
    assert apply(REPO / "tracks/reviews/params.full-gift-cards.yaml", target).returncode == 0
    merged = load_params(target)
    assert list(merged["drift"]["batches"]) == ["test_period", "all_beauty"]  # no gift_cards
    assert merged["drift"]["model"] == "champion"  # the rest of the section: merged as before
    assert merged["data"]["reviews"] == "Gift_Cards_5.json.gz"
    assert "!replace" not in target.read_text()


def test_drop_tag_removes_the_key(tmp_path):
    target = tmp_path / "params.yaml"
    target.write_text((REPO / "tracks/nextitem/params.yaml").read_text())
    done = apply(REPO / "tracks/nextitem/params.full-beauty.yaml", target)
    assert done.returncode == 0, done.stderr
    merged = load_params(target)
    assert "sasrec_semantic" not in merged["models"]
    assert merged["models"]["sasrec"]["epochs"] == 200
    assert merged["models"]["sasrec"]["layers"] == 2  # the rest of the model: merged
    assert "!drop" not in target.read_text()


def test_applying_a_profile_twice_is_allowed_and_changes_nothing(tmp_path):
    """A second `run.sh --full nextitem:beauty` meets a params.yaml whose sasrec_semantic the
    first one dropped: that is no typo, and the result is the same params."""
    target = tmp_path / "params.yaml"
    target.write_text((REPO / "tracks/nextitem/params.yaml").read_text())
    overlay = REPO / "tracks/nextitem/params.full-beauty.yaml"
    assert apply(overlay, target).returncode == 0
    once = target.read_text()
    assert once.startswith("# applied: params.full-beauty.yaml\n")
    again = apply(overlay, target)
    assert again.returncode == 0, again.stderr
    assert target.read_text() == once
    # another overlay that drops a key already gone is still refused
    other = tmp_path / "other.yaml"
    other.write_text("models:\n  sasrec_semantic: !drop\n")
    assert apply(other, target).returncode == 1


def test_drop_of_an_unknown_key_is_refused(tmp_path):
    target = tmp_path / "params.yaml"
    target.write_text((REPO / "tracks/nextitem/params.yaml").read_text())
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("models:\n  no_such_model: !drop\n")
    done = apply(overlay, target)
    assert done.returncode == 1
    assert "'no_such_model' tagged !drop is not in the params file" in done.stderr
    assert target.read_text() == (REPO / "tracks/nextitem/params.yaml").read_text()


def test_added_composite_shares_the_anchored_component(tmp_path):
    target = tmp_path / "params.yaml"
    target.write_text((REPO / "params.yaml").read_text())
    assert apply(REPO / "params.thorough.yaml", target).returncode == 0
    text = target.read_text()
    assert "miner: {bm25: *bm25}" in text  # an alias, not a copy: it follows bm25's edits
    merged = load_params(target)
    assert merged["models"]["biencoder_ft"]["miner"]["bm25"] == merged["models"]["bm25"]
    assert merged["models"]["cross_encoder"]["components"]["hybrid"] == merged["models"]["hybrid"]


def test_unknown_anchor_is_one_clear_error(tmp_path):
    target = tmp_path / "params.yaml"
    target.write_text("models:\n  bm25: &bm25 {family: bm25}\n")
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text('models:\n  ft: {family: biencoder_ft, miner: {bm25: "*nope"}}\n')
    done = apply(overlay, target)
    assert done.returncode == 1
    assert "no node anchored &nope" in done.stderr
    assert target.read_text() == "models:\n  bm25: &bm25 {family: bm25}\n"  # untouched
