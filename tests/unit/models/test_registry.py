from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shelflab.errors import ConfigError, InputError, UnknownModelError
from shelflab.models import FAMILIES, MODEL_FILE, ModelContext, create, load, validate_spec


def test_families_registered():
    assert {"bm25", "dense", "hybrid"} <= set(FAMILIES)


def test_unknown_family_lists_known():
    with pytest.raises(UnknownModelError) as err:
        create("m1", {"family": "bm26"}, ModelContext())
    msg = str(err.value)
    assert "'bm26'" in msg and "'m1'" in msg
    for family in ("bm25", "dense", "hybrid"):
        assert family in msg
    assert isinstance(err.value, ConfigError)


def test_missing_family_unless_named_after_one():
    with pytest.raises(ConfigError, match="missing 'family'"):
        create("my_model", {"k1": 1.0})
    assert create("bm25", {"k1": 1.0}).family == "bm25"


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"family": "bm25", "k2": 1.0}, "k2"),
        ({"family": "bm25", "k1": "high"}, "k1"),
        ({"family": "bm25", "b": 1.5}, "b"),
        ({"family": "bm25", "method": "bm99"}, "method"),
        ({"family": "bm25", "lowercase": "yes"}, "lowercase"),
        ({"family": "dense", "batch_size": 0}, "batch_size"),
        ({"family": "dense", "batch_size": True}, "batch_size"),
        ({"family": "dense", "search": "faiss"}, "search"),
        ({"family": "hybrid", "method": "borda"}, "method"),
        ({"family": "hybrid", "weights": [1.0]}, "weights"),
        ({"family": "hybrid", "components": ["a", "b"]}, "components"),
        ({"family": "hybrid", "components": {}}, "components"),
    ],
)
def test_bad_params_name_model_and_key(spec, key):
    with pytest.raises(ConfigError) as err:
        create("mine", spec)
    assert "'mine'" in str(err.value) and f"'{key}'" in str(err.value)


def test_defaults_filled_and_ints_accepted_as_floats():
    params = validate_spec("bm25", {"family": "bm25", "k1": 1})
    assert params["k1"] == 1.0 and isinstance(params["k1"], float)
    assert params["method"] == "lucene" and params["stemmer"] == "english"
    hybrid = validate_spec("h", {"family": "hybrid"})
    assert sorted(hybrid["components"]) == ["bm25", "dense"] and hybrid["rrf_k"] == 60.0
    assert hybrid["components"]["bm25"]["k1"] == validate_spec("bm25", {})["k1"]
    assert hybrid["depth"] == 200 and hybrid["weights"] is None


def test_save_load_round_trip(tmp_path):
    model = create("lex", {"family": "bm25", "k1": 0.9, "method": "bm25+"})
    model.save(tmp_path)
    meta = json.loads((tmp_path / MODEL_FILE).read_text())
    assert meta["family"] == "bm25" and meta["name"] == "lex"
    again = load(tmp_path)
    assert type(again) is type(model) and again.params == model.params


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match=MODEL_FILE):
        load(tmp_path)
    (tmp_path / MODEL_FILE).write_text("{not json")
    with pytest.raises(InputError, match="unreadable"):
        load(tmp_path)
    (tmp_path / MODEL_FILE).write_text(json.dumps({"name": "x", "family": "nope", "params": {}}))
    with pytest.raises(UnknownModelError):
        load(tmp_path)


def test_import_is_light():
    code = (
        "import sys, shelflab.models\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'chromadb', 'bm25s')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
