"""ONNX Runtime encoders (shelflab/models/onnx_encoder.py) against the torch model they come
from: the packaged all-MiniLM-L6-v2 on real Home Depot titles."""

import numpy as np
import polars as pl
import pytest

from shelflab.models.encoders import encode, load_encoder, resolve_model_path
from shelflab.models.onnx_encoder import load_onnx_encoder, onnx_cache_dir

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def titles(repo_root):
    items = pl.read_csv(repo_root / "data" / "sample" / "products.csv.gz", encoding="utf8-lossy")
    return [*items["product_title"].head(200).to_list(), "", "x", "a " * 400]


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # a fresh export cache for this module
        mp.setenv("SHELFLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def path():
    return str(resolve_model_path("all-MiniLM-L6-v2"))


def test_onnx_embeddings_equal_torch(path, titles):
    torch_vecs = encode(load_encoder(path, "cpu"), titles, 32)
    load_onnx_encoder.cache_clear()  # export into this module's cache, not a session's
    onnx = load_onnx_encoder(path)
    onnx_vecs = encode(onnx, titles, 32)
    assert onnx_vecs.shape == torch_vecs.shape == (len(titles), 384)
    cosine = (onnx_vecs * torch_vecs).sum(axis=1)
    assert cosine.min() > 0.99999  # the same model, a different runtime
    assert np.allclose(np.linalg.norm(onnx_vecs, axis=1), 1.0, atol=1e-5)
    # exported once per weights: a second load reuses the file
    files = list(onnx_cache_dir().glob("*.onnx"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    load_onnx_encoder.cache_clear()
    load_onnx_encoder(path)
    assert files[0].stat().st_mtime_ns == mtime


def test_dense_backend_auto_is_onnx_on_cpu_and_embeds_like_torch():
    from shelflab.models import create
    from shelflab.models.base import ModelContext

    auto = create("dense", {"family": "dense", "device": "cpu", "cache": False}, ModelContext())
    torch_model = create(
        "dense", {"family": "dense", "device": "cpu", "backend": "torch", "cache": False},
        ModelContext(),
    )  # fmt: skip
    assert auto.backend == "onnx" and torch_model.backend == "torch"
    queries = ["cordless drill", "outdoor ceiling fan with light", "1/2 in. pvc elbow"]
    a, b = auto.embed_queries(queries), torch_model.embed_queries(queries)
    assert (a * b).sum(axis=1).min() > 0.99999


def test_token_ids_equal_the_transformers_tokenizer(path, titles):
    """The fast tokenizer read from tokenizer.json pads and truncates as sentence-transformers
    calls the transformers tokenizer (strip, longest in the batch, max_seq_length)."""
    from pathlib import Path

    from transformers import AutoTokenizer

    from shelflab.models.onnx_encoder import _tokenize, read_spec

    spec = read_spec(Path(path), 64)
    reference = AutoTokenizer.from_pretrained(path)
    for start in range(0, len(titles), 50):
        batch = [f"  {t} " for t in titles[start : start + 50]]
        ours = _tokenize(spec, batch)
        theirs = reference([t.strip() for t in batch], padding=True, truncation="longest_first",
                           max_length=64, return_tensors="np")  # fmt: skip
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            assert (ours[name] == theirs[name]).all(), name
    assert spec.pooling == "mean" and spec.dim == 384 and spec.normalize


def test_loading_an_exported_model_imports_no_torch(path, tmp_path):
    """A stage that finds the graph in the cache loads in a fraction of a second."""
    import subprocess
    import sys

    load_onnx_encoder(path)  # exported into this module's cache
    code = (
        "import sys; from shelflab.models.onnx_encoder import load_onnx_encoder; "
        f"e = load_onnx_encoder({path!r}); e.encode(['drill']); "
        "print(sorted({'torch', 'sentence_transformers', 'transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ([], "no modules.json"),
        (["Transformer", "Pooling", "Dense", "Normalize"], "'Dense'"),
        (["Transformer"], r"\['Transformer'\]"),
    ],
)
def test_models_onnx_cannot_run_are_refused(path, tmp_path, modules, message):
    import json
    import shutil
    from pathlib import Path

    from shelflab.errors import ConfigError
    from shelflab.models.onnx_encoder import read_spec

    model = tmp_path / "model"
    shutil.copytree(path, model)
    listed = [
        {"path": "1_Pooling" if k == "Pooling" else "", "type": f"sentence_transformers.models.{k}"}
        for k in modules
    ]
    if modules:
        (model / "modules.json").write_text(json.dumps(listed))
    else:
        (model / "modules.json").unlink()
    with pytest.raises(ConfigError, match=message):
        read_spec(Path(model))
