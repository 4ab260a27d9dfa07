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
