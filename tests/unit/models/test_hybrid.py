"""The composite hybrid: components are whole specs built inside the hybrid's own dirs."""

from __future__ import annotations

import polars as pl
import pytest

from shelflab.errors import ConfigError
from shelflab.models import create, open_model
from shelflab.models.fusion import rrf

COMPONENTS = {"bm25": {"family": "bm25"}, "dense": {"family": "dense"}}


@pytest.mark.parametrize(
    "spec",
    [
        {"family": "hybrid", "components": COMPONENTS},
        {
            "family": "hybrid",
            "components": COMPONENTS,
            "method": "weighted",
            "weights": [0.3, 0.7],
            "depth": 50,
        },
        {"family": "hybrid", "components": COMPONENTS, "method": "weighted", "norm": "zscore"},
    ],
)
def test_hybrid_runs(ctx, items, tmp_path, queries, title_queries, check_run, spec, reopen):
    hybrid = reopen(create("hyb", spec, ctx), ctx, items, tmp_path)[0]
    run = hybrid.retrieve(queries, 30)
    check_run(run, 30)
    assert run["query_id"].n_unique() == queries.height
    top = hybrid.retrieve(title_queries.select("query_id", "text"), 5)
    first = top.filter(pl.col("rank") == 1).join(title_queries, on="query_id")
    assert (first["item_id"] == first["item_id_right"]).all()
    hybrid.close()


def test_hybrid_equals_fusion_of_standalone_components(
    ctx, items, tmp_path, queries, bm25_dirs, dense, reopen
):
    """The composite's components behave exactly like the standalone models they copy."""
    spec = {"family": "hybrid", "components": COMPONENTS, "depth": 40}
    hybrid = reopen(create("hyb", spec, ctx), ctx, items, tmp_path)[0]
    bm25 = open_model(*bm25_dirs[:2], ctx)
    expected = rrf([bm25.retrieve(queries, 40), dense.retrieve(queries, 40)], rrf_k=60, k=20)
    got = hybrid.retrieve(queries, 20)
    assert (
        got.select("query_id", "item_id", "rank")
        .sort("query_id", "rank")
        .equals(expected.select("query_id", "item_id", "rank").sort("query_id", "rank"))
    )
    assert (tmp_path / "model" / "components" / "bm25" / "shelflab-model.json").is_file()
    assert (tmp_path / "index" / "components" / "dense" / "embeddings.npy").is_file()
    hybrid.close()


def test_hybrid_saves_full_component_specs(ctx, tmp_path):
    model = create(
        "hyb", {"family": "hybrid", "components": {"b": {"family": "bm25", "k1": 0.9}}}, ctx
    )
    assert model.params["components"]["b"]["k1"] == 0.9
    assert model.params["components"]["b"]["b"] == 0.75  # default filled in and saved


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"components": {}}, "components' is empty"),
        ({"components": ["bm25", "dense"]}, "mapping of model name"),
        ({"components": {"x": {"family": "hybrid"}}}, "itself a hybrid"),
        ({"components": {"x": {"family": "bm42"}}}, "unknown family 'bm42'"),
        ({"components": {"x": {"family": "bm25", "k9": 1}}}, "unknown param 'k9'"),
        ({"components": COMPONENTS, "weights": [1.0]}, "1 values for 2 components"),
    ],
)
def test_hybrid_bad_specs(ctx, spec, message):
    with pytest.raises(ConfigError, match=message):
        create("hyb", {"family": "hybrid", **spec}, ctx)


def test_hybrid_index_marker_must_match(ctx, items, tmp_path):
    create(
        "hyb", {"family": "hybrid", "components": {"bm25": {"family": "bm25"}}}, ctx
    ).build_index(items.head(50), tmp_path)
    other = create("hyb", {"family": "hybrid", "components": COMPONENTS}, ctx)
    with pytest.raises(ConfigError, match="components"):
        other.open_index(tmp_path)
