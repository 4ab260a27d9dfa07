"""xgb_ltr end to end on the 2,000-product Home Depot subset with real judged search terms."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from shelflab.errors import ConfigError, InputError
from shelflab.evaluation.plots import importance_plot
from shelflab.models import TrainData, create
from shelflab.models.training import fit_spec
from shelflab.models.xgb_ltr import XGBRankerRetriever

COMPONENTS = {"bm25": {"family": "bm25"}, "dense": {"family": "dense", "chroma": False}}
SPEC = {
    "family": "xgb_ltr",
    "components": COMPONENTS,
    "first_stage": "bm25",
    "candidates": 30,
    "n_estimators": 40,
    "early_stopping_rounds": 10,
}


@pytest.fixture(scope="module")
def data(split_judged):
    return split_judged()


@pytest.fixture(scope="module")
def trained(ctx, data):
    model = create("ltr", SPEC, ctx)
    model.fit(data[0])
    return model


@pytest.fixture(scope="module")
def opened(trained, ctx, items, tmp_path_factory, reopen):
    opened = reopen(trained, ctx, items, tmp_path_factory.mktemp("xgb_ltr"))
    yield opened
    opened[0].close()


def test_save_load_index_retrieve(opened, data, check_run):
    model, model_dir, index_dir = opened
    test_q = data[1]
    run = model.retrieve(test_q, 10)
    check_run(run, 10)
    assert run["query_id"].n_unique() > 0.8 * test_q.height
    deep = model.retrieve(test_q, 50)  # k above `candidates`: more candidates are reranked
    check_run(deep, 50)
    assert deep.group_by("query_id").len()["len"].max() > 30
    booster = (model_dir / "booster.json").read_text()
    assert json.loads(booster)["learner"]  # XGBoost JSON, not a pickle
    assert not list(model_dir.rglob("*.pkl")) and not list(model_dir.rglob("*.ubj"))
    assert json.loads((model_dir / "ltr.json").read_text())["features"] == model.feature_names
    for name in COMPONENTS:
        assert (model_dir / "components" / name / "shelflab-model.json").is_file()
        assert (index_dir / "components" / name / "shelflab-index.json").is_file()
    assert model.train_info["rounds"] <= SPEC["n_estimators"]
    assert model.train_info["valid_queries"] > 0


def test_reloaded_booster_gives_identical_scores(opened, trained, data):
    model = opened[0]
    frame = model._features(model.components, data[1], model._items, 30)
    assert np.array_equal(model.scores(frame), trained.scores(frame))


def test_training_is_deterministic(opened, trained, ctx, data):
    again = create("ltr", SPEC, ctx)
    again.fit(data[0])
    model = opened[0]
    frame = model._features(model.components, data[1], model._items, 30)
    assert np.array_equal(again.scores(frame), trained.scores(frame))
    assert again.train_info == trained.train_info


def test_feature_importance_lists_every_feature(trained, tmp_path):
    gain = trained.feature_importance()
    assert list(gain) == trained.feature_names
    for name in ("bm25_score", "bm25_rr", "dense_score", "dense_rr"):
        assert name in gain
    # bm25 score and cosine are computed for every candidate: nothing to fill in
    assert "dense_missing" not in gain and "bm25_missing" not in gain
    assert {"overlap", "char3_jaccard", "fuzzy_token", "numeric_match", "title_chars"} <= set(gain)
    assert all(v >= 0 for v in gain.values()) and sum(gain.values()) > 0
    out = importance_plot(gain, "ltr: feature importance", tmp_path / "fi.png")  # as evaluate does
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_refuses_training_without_positive_pairs(ctx, data, items, refuses):
    refuses(create("ltr", SPEC, ctx), data[0], items)


def test_refuses_when_first_stage_finds_no_positive(ctx, data, items):
    train = data[0]
    small = items.head(50)  # the judged items are mostly elsewhere
    qrels = train.train_qrels.filter(~pl.col("item_id").is_in(small["item_id"].implode()))
    spec = {**SPEC, "components": {"bm25": {"family": "bm25"}}}
    with pytest.raises(InputError, match="top 30 first-stage candidates"):
        create("ltr", spec, ctx).fit(TrainData(small, train.train_queries, qrels))


def test_hybrid_component_features_and_fit_spec(ctx):
    hyb = {"family": "hybrid", "components": COMPONENTS}
    model = create(
        "ltr", {"family": "xgb_ltr", "components": {"hyb": hyb}, "first_stage": "hyb"}, ctx
    )
    names = [n for n, _ in XGBRankerRetriever.feature_models(model.components)]
    assert names == ["hyb", "hyb.bm25", "hyb.dense"]
    spec = fit_spec({"family": "hybrid", "components": {"d": {"family": "dense", "chroma": True}}})
    assert spec["components"]["d"]["chroma"] is False


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"first_stage": "nope"}, "'first_stage' = 'nope' is not a component"),
        ({"features": ["lexical", "magic"]}, "param 'features'"),
        ({"features": []}, "param 'features'"),
        ({"objective": "rank:foo"}, "param 'objective'"),
        ({"components": {}}, "components' is empty"),
        ({"components": {"x": {"family": "xgb_ltr"}}, "first_stage": "x"}, "itself a xgb_ltr"),
        ({"subsample": 0.0}, "subsample"),
        ({"eta": -1}, "param 'eta'"),
    ],
)
def test_bad_specs(ctx, spec, message):
    with pytest.raises(ConfigError, match=message):
        create("ltr", {**SPEC, **spec}, ctx)


def test_unfitted_model_cannot_be_saved(ctx, tmp_path):
    with pytest.raises(ConfigError, match="call fit before save"):
        create("ltr", SPEC, ctx).save(tmp_path)


def test_booster_only_changes_reuse_the_training_frames(ctx, data):
    from shelflab.models import xgb_ltr

    spec = {**SPEC, "components": {"bm25": {"family": "bm25"}}, "n_estimators": 5}
    create("a", spec, ctx).fit(data[0])
    frames = xgb_ltr._FRAMES["last"][2]
    create("b", {**spec, "eta": 0.3, "max_depth": 2}, ctx).fit(data[0])
    assert xgb_ltr._FRAMES["last"][2] is frames  # same candidates/features: reused
    create("c", {**spec, "candidates": 10}, ctx).fit(data[0])
    assert xgb_ltr._FRAMES["last"][2] is not frames
    assert xgb_ltr._FRAMES["last"][2][xgb_ltr.RANK].max() <= 10


def test_training_frames_are_read_back_from_disk_by_a_later_stage(ctx, data, tmp_path, capsys):
    from dataclasses import replace

    from shelflab.models import frame_cache, xgb_ltr

    ctx = replace(ctx, cache_dir=tmp_path, show_progress=True)
    spec = {**SPEC, "components": {"bm25": {"family": "bm25"}}, "n_estimators": 5}
    first = create("a", spec, ctx)
    first.fit(data[0])
    built = xgb_ltr._FRAMES.pop("last")[2]  # what a new process (train@ after tune@) lacks
    assert "features from the cache" not in capsys.readouterr().err
    again = create("b", {**spec, "eta": 0.3}, ctx)
    again.fit(data[0])
    assert "features from the cache" in capsys.readouterr().err
    assert xgb_ltr._FRAMES["last"][2].equals(built)
    assert again.train_info["train_pairs"] == first.train_info["train_pairs"]
    # other data (one judgment fewer) or other model code: a miss, built afresh
    xgb_ltr._FRAMES.clear()
    fewer = replace(data[0], train_qrels=data[0].train_qrels.slice(1))
    create("c", spec, ctx).fit(fewer)
    assert "features from the cache" not in capsys.readouterr().err
    xgb_ltr._FRAMES.clear()
    frame_cache.code_digest.cache_clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(frame_cache.pl, "__version__", "0.0.0")  # part of the code digest
        create("d", spec, ctx).fit(data[0])
    frame_cache.code_digest.cache_clear()
    assert "features from the cache" not in capsys.readouterr().err
    assert len([d for d in (tmp_path / "ltr_features").iterdir()]) == frame_cache.KEEP


def test_reranker_params_are_declared_once():
    from shelflab.models.cross_encoder import CrossEncoderRetriever
    from shelflab.models.reranker import Reranker, reranker_params

    shared = ("components", "first_stage", "candidates")
    for cls, candidates in ((XGBRankerRetriever, 100), (CrossEncoderRetriever, 50)):
        assert issubclass(cls, Reranker)
        assert list(cls.PARAMS)[:3] == list(shared)
        declared = reranker_params(candidates=candidates)
        for key in ("first_stage", "candidates"):
            assert cls.PARAMS[key] == declared[key]
        assert cls.PARAMS["components"].default == {"hybrid": {"family": "hybrid"}}
