"""tuned/<model>.json as train@ reads it: validated like params.yaml, and params.yaml's own
entry is validated even where the tuned file overrides it."""

from __future__ import annotations

import json

import pytest

from shelflab.errors import ConfigError
from shelflab.tuning.tuned import tuned_spec, write_untuned

BM25 = {"family": "bm25", "k1": 1.2, "b": 0.75, "method": "lucene", "stemmer": "english"}


def write(tmp_path, payload) -> None:
    (tmp_path / "tuned").mkdir(exist_ok=True)
    (tmp_path / "tuned" / "bm25.json").write_text(
        payload if isinstance(payload, str) else json.dumps(payload)
    )


def tuned(**best) -> dict:
    return {"model": "bm25", "tuned": True, "best_params": best, "params": {**BM25, **best}}


def test_tuned_values_apply_on_top_of_params_yaml(tmp_path):
    write(tmp_path, tuned(k1=0.9))
    assert tuned_spec(tmp_path, "bm25", BM25) == {**BM25, "k1": 0.9}
    assert tuned_spec(tmp_path / "none", "bm25", BM25) == BM25  # no file: params.yaml


def test_a_bad_params_yaml_value_is_not_hidden_by_the_tuned_file(tmp_path):
    write(tmp_path, tuned(k1=0.9))
    with pytest.raises(ConfigError, match=r"k1"):
        tuned_spec(tmp_path, "bm25", {**BM25, "k1": -3.0})
    with pytest.raises(ConfigError, match=r"k1_typo|unknown"):
        tuned_spec(tmp_path, "bm25", {**BM25, "k1_typo": 1.0})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", r"bm25.json: not a readable JSON file"),
        (
            {"model": "bm25", "tuned": True, "params": BM25},
            r"bm25.json: best_params: Field required",
        ),
        (
            {**tuned(k1=0.9), "best_params": [0.9]},
            r"bm25.json: best_params: Input should be a valid",
        ),
        ({**tuned(k1=0.9), "model": "hybrid"}, r"written for model 'hybrid', not 'bm25'"),
        (tuned(k1=-5.0), r"bm25.json: .*k1"),
        (tuned(method="bm99"), r"bm25.json: .*method"),
    ],
)
def test_bad_tuned_files_name_the_file(tmp_path, payload, message):
    write(tmp_path, payload)
    with pytest.raises(ConfigError, match=message):
        tuned_spec(tmp_path, "bm25", BM25)


def test_a_pass_through_file_round_trips(tmp_path):
    (tmp_path / "tuned").mkdir()
    write_untuned(tmp_path / "tuned" / "bm25.json", "bm25", BM25)
    assert tuned_spec(tmp_path, "bm25", BM25) == BM25
