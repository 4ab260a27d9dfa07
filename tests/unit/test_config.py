import shutil

import pytest

from shelflab.config import experiment_name, load_params, model_spec, tracking_uri
from shelflab.errors import ConfigError, UnknownModelError


def test_repo_params_load(repo_root):
    params = load_params(repo_root / "params.yaml")
    assert experiment_name(params) == "search-homedepot-sample"
    # the hybrid embeds its components' specs through YAML anchors
    assert params["models"]["hybrid"]["components"]["bm25"] == params["models"]["bm25"]


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  name: x\n  dir: [unclosed\nsplit: {}\n")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    message = str(err.value)
    assert str(path) in message and "line" in message and "malformed YAML" in message


def test_missing_section_and_bad_model(tmp_path, repo_root):
    path = tmp_path / "params.yaml"
    path.write_text("data: {}\n")
    with pytest.raises(ConfigError, match="missing section"):
        load_params(path)
    text = (repo_root / "params.yaml").read_text().replace("family: bm25", "fam: bm25")
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"models\.bm25 must be a mapping with a .family."):
        load_params(path)


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")


def test_unknown_model(repo_root):
    params = load_params(repo_root / "params.yaml")
    with pytest.raises(UnknownModelError, match=r"unknown model .bm42.*bm25"):
        model_spec(params, "bm42")


def test_tracking_uri_anchored_at_root(tmp_path, monkeypatch, repo_root):
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    params = load_params(tmp_path / "params.yaml")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(params, tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(params, tmp_path) == "http://127.0.0.1:5000"


def _edit(params: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        params = params[key]
    if value is DELETE:
        del params[last]
    else:
        params[last] = value


DELETE = object()
# (track file, edits, the one-line message after "<file>: ")
S, R, N = "params.yaml", "tracks/reviews/params.yaml", "tracks/nextitem/params.yaml"
BAD_PARAMS = [
    (S, {"data.grade_maping": "identity"},
     "data.grade_maping: unknown key (expected one of: dir, format, grade_mapping, "
     "min_kept_fraction, name)"),
    (S, {"data.grade_mapping": "exp"}, "data.grade_mapping: Input should be "),
    (S, {"data.format": "amazon"}, "data.format: Input should be 'home_depot' or 'wands'"),
    (S, {"split.seed": "abc"}, "split.seed: Input should be a valid integer, got 'abc'"),
    (S, {"split.seed": 4.5}, "split.seed: Input should be a valid integer"),
    (S, {"split.fractions": DELETE, "split.fractons": [0.8, 0.1, 0.1]},
     "split.fractons: unknown key "
     "(expected one of: fractions, lockbox_fraction, lockbox_seed, seed)"),
    (S, {"split.fractions": [0.8, 0.1, 0.2]},
     "split: fractions [0.8, 0.1, 0.2] sum to 1.1, expected 1 (train, valid, test)"),
    (S, {"split.fractions": [0.9, 0.1]}, "split.fractions: List should have at least 3"),
    (S, {"enrich.lowercase": "yes please"}, "enrich.lowercase: Input should be a valid boolean"),
    (S, {"evaluate.k": 0}, "evaluate.k: Input should be greater than or equal to 1, got 0"),
    (S, {"evaluate.splits": ["valid", "tset"]}, "evaluate.splits.1: Input should be "),
    (S, {"evaluate.relevance_threshold": 0},
     "evaluate.relevance_threshold: Input should be greater than 0"),
    (S, {"evaluate.bootstrap.confidence": 95},
     "evaluate.bootstrap.confidence: Input should be less than 1"),
    (S, {"leaderboard.split": "dev"}, "leaderboard.split: Input should be "),
    (S, {"leaderboard.significance.method": "t-test"},
     "leaderboard.significance.method: Input should be 'randomization' or 'bootstrap'"),
    (S, {"promote.alpha": 1.5}, "promote.alpha: Input should be less than 1, got 1.5"),
    (S, {"promote.guardrails.recall@100.max_dorp": 0.1},
     "promote.guardrails.recall@100.max_dorp: unknown key "
     "(expected one of: max, max_drop, max_ratio)"),
    (S, {"tune.models.bm25.trails": 3},
     "tune.models.bm25.trails: unknown key "
     "(expected one of: catalog, fixed, queries, space, timeout, trials)"),
    (S, {"tune.models.bm25.trials": 0},
     "tune.models.bm25.trials: Input should be greater than or equal to 1"),
    (S, {"tune.sampler": "grid"}, "tune.sampler: Input should be 'tpe' or 'random'"),
    (S, {"tune.split": "test"}, "tune.split: Input should be 'valid' or 'train'"),
    (S, {"mlflow.track": "serch"}, "mlflow.track: 'serch' is not a track"),
    (S, {"evalute": {}}, "evalute: unknown section for the search track"),
    (S, {"drift": {}}, "drift: unknown section for the search track"),
    (R, {"drift.drift_shar": 0.99}, "drift.drift_shar: unknown key"),
    (R, {"drift.drift_share": 1.5}, "drift.drift_share: Input should be less than or equal to 1"),
    (R, {"drift.embeddings.method": "cosine"}, "drift.embeddings.method: Input should be "),
    (R, {"drift.batches.gift_cards.pth": "x"},
     "drift.batches.gift_cards.pth: unknown key (expected one of: path, split)"),
    (R, {"data.query_fields": ["title"]},
     "data.query_fields.0: Input should be 'summary' or 'body'"),
    (R, {"item_text.keywords.max_df": 0},
     "item_text.keywords.max_df: Input should be greater than 0"),
    (R, {"split.method": "random"}, "split.method: Input should be 'time'"),
    (N, {"split.min_length": 1}, "split.min_length: Input should be greater than or equal to 3"),
    (N, {"data.format": "recbole"}, "data.format: Input should be "),
    (N, {"data.k_core": "five"}, "data.k_core: Input should be a valid integer"),
]  # fmt: skip


@pytest.mark.parametrize(("track_file", "edits", "message"), BAD_PARAMS)
def test_params_schema_names_file_and_key(tmp_path, repo_root, track_file, edits, message):
    import yaml

    params = yaml.safe_load((repo_root / track_file).read_text())
    for dotted, value in edits.items():
        if "." not in dotted:
            params[dotted] = value
            continue
        _edit(params, dotted, value)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError) as err:
        load_params(path)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {message}"), text


@pytest.mark.parametrize("track", [".", "tracks/reviews", "tracks/nextitem"])
def test_every_shipped_params_file_fits_the_schema(repo_root, tmp_path, track):
    """The quick, --thorough and --full params of every track load (the overlays applied as
    scripts/run.sh applies them)."""
    import subprocess
    import sys

    load_params(repo_root / track / "params.yaml")
    for overlay in ("params.thorough.yaml", "params.full.yaml"):
        target = tmp_path / f"{overlay}.params.yaml"
        shutil.copy(repo_root / track / "params.yaml", target)
        subprocess.run(
            [sys.executable, str(repo_root / "scripts" / "apply_params.py"),
             str(repo_root / track / overlay), str(target)],
            check=True, capture_output=True,
        )  # fmt: skip
        load_params(target)
