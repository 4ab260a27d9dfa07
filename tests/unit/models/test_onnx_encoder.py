"""ONNX Runtime encoders (shelflab/models/onnx_encoder.py) against the torch model they come
from: the packaged all-MiniLM-L6-v2 on real Home Depot titles."""

import numpy as np
import polars as pl
import pytest

from shelflab.errors import ConfigError
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

    def dense(**params):
        return create("dense", {"family": "dense", "device": "cpu", "cache": False, **params},
                      ModelContext())  # fmt: skip

    auto, fp32, torch_model = dense(), dense(precision="fp32"), dense(backend="torch")
    assert (auto.backend, auto.precision) == ("onnx", "int8")
    assert (fp32.backend, fp32.precision) == ("onnx", "fp32")
    assert (torch_model.backend, torch_model.precision) == ("torch", "fp32")
    queries = ["cordless drill", "outdoor ceiling fan with light", "1/2 in. pvc elbow"]
    a, f, b = (m.embed_queries(queries) for m in (auto, fp32, torch_model))
    assert (f * b).sum(axis=1).min() > 0.99999  # the same model, a different runtime
    # int8 weights move the vectors a little (0.991-0.994 here), not to another model
    assert 0.98 < (a * b).sum(axis=1).min() < 0.9999
    assert auto.model_key != fp32.model_key == torch_model.model_key
    with pytest.raises(ConfigError, match="precision int8 runs on ONNX Runtime"):
        _ = dense(backend="torch", precision="int8").precision


def test_int8_ranks_sample_titles_as_fp32_does(titles):
    """Dense search with the int8 encoder finds the fp32 encoder's neighbours: the top-10 of
    each query title among 200 real titles overlap >= 80% on average."""
    from shelflab.models import create
    from shelflab.models.base import ModelContext

    texts = [t for t in titles[:200] if t.strip()]
    found = {}
    for precision in ("fp32", "int8"):
        model = create("dense", {"family": "dense", "device": "cpu", "cache": False,
                                 "precision": precision}, ModelContext())  # fmt: skip
        emb = model.embed_items(texts)
        found[precision] = np.argsort(-(emb[:50] @ emb.T), axis=1)[:, :10]
    overlap = [len(set(a) & set(b)) / 10 for a, b in zip(found["fp32"], found["int8"], strict=True)]
    assert np.mean(overlap) >= 0.8, np.mean(overlap)


def test_an_open_index_sets_the_query_precision(tmp_path):
    """precision auto encodes queries as the index's items were encoded: an fp32 index (or
    one older than the param) is searched with fp32 queries, not int8 ones."""
    from shelflab.models import create
    from shelflab.models.base import ModelContext

    items = pl.DataFrame({"item_id": ["a", "b", "c"], "text": ["drill", "saw", "ceiling fan"]})
    spec = {"family": "dense", "device": "cpu", "cache": False, "chroma": False}
    create("dense", {**spec, "precision": "fp32"}, ModelContext()).build_index(items, tmp_path)
    reader = create("dense", spec, ModelContext())
    assert reader.precision == "int8"  # before it opens an index
    reader.open_index(tmp_path)
    assert reader.precision == "fp32"
    run = reader.retrieve(pl.DataFrame({"query_id": ["q"], "text": ["cordless drill"]}), 3)
    assert run["item_id"][0] == "a"
    with pytest.raises(ConfigError, match="another encoder"):
        create("dense", {**spec, "precision": "int8"}, ModelContext()).open_index(tmp_path)


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
