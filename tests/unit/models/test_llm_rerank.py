"""llm_rerank end to end against a real local OpenAI-protocol server (tests/plugins/llm_server.py,
which ranks candidates by the words their titles share with the query or history): hand-worked
next-item reorderings, a bm25 search first stage, the cache, resume after a 503, timeouts,
malformed answers, rationales, save/open, and the missing-endpoint message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from plugins.llm_server import LLM_KEY_ENV, LLMServer

from shelflab.errors import ConfigError
from shelflab.llm.client import LLMError
from shelflab.models import ModelContext, TrainData, create, load, open_model
from shelflab.protocols.leave_one_out import leave_one_out

# popularity counts (train = all but the last two): a 3, b 3, c 2, d 1, x 0, y 0
USERS = {"u1": "a b c x y", "u2": "a b x y", "u3": "b d y x", "u4": "a c y x"}
TITLES = {
    "a": "Steel kettle",
    "b": "Blue mug",
    "c": "Green teapot",
    "d": "Green tea",
    "x": "Green tea sampler",
    "y": "Red mug",
}
PRODUCTS = {
    "p1": "Cordless drill 18V with two batteries",
    "p2": "Drill bit set for wood and metal",
    "p3": "Cordless impact driver 18V",
    "p4": "Steel shelf 40 inch garage storage",
    "p5": "LED desk lamp with USB charging",
    "p6": "Cordless drill brushless compact kit",
}
LEGAL_KEY = re.compile(r"^[A-Za-z0-9_\-. :/]+$")  # what MLflow accepts in a metric name


@pytest.fixture
def next_item() -> tuple[pl.DataFrame, TrainData]:
    seqs = pl.DataFrame(
        {"user_id": list(USERS), "items": [s.split() for s in USERS.values()]},
        schema={"user_id": pl.String, "items": pl.List(pl.String)},
    )
    task = leave_one_out(seqs)
    items = pl.DataFrame({"item_id": list(TITLES), "text": list(TITLES.values())})
    tq, tr = task.part("train")
    return task.part("test")[0], TrainData(items, tq, tr)


@pytest.fixture
def params(llm_server: LLMServer, llm_env: None, tmp_path: Path) -> dict[str, Any]:
    return {
        "family": "llm_rerank",
        "components": {"pop": {"family": "popularity"}},
        "first_stage": "pop",
        "candidates": 3,
        "base_url": llm_server.base_url,
        "model": "fake-model",
        "api_key_env": LLM_KEY_ENV,
        "timeout": 5,
        "max_retries": 1,
        "retry_base_delay": 0.01,
        "concurrency": 2,
        "cache_dir": str(tmp_path / "cache"),
    }


def built(params: dict[str, Any], train: TrainData, tmp_path: Path, **extra: Any):
    model = create("rr", {**params, **extra}, ModelContext(cache_dir=tmp_path / "ctx"))
    model.fit(train)
    index = tmp_path / f"index-{len(list(tmp_path.glob('index-*')))}"
    index.mkdir()
    model.build_index(train.items, index)
    return model


def items_of(run: pl.DataFrame, qid: str) -> list[str]:
    return run.filter(pl.col("query_id") == qid).sort("rank")["item_id"].to_list()


def test_next_item_rerank_by_hand(next_item, params, llm_server, tmp_path) -> None:
    queries, train = next_item
    model = built(params, train, tmp_path)
    assert model.query_input == "history"  # follows the popularity first stage
    u3 = queries.filter(query_id="u3@test")  # history b d y: first stage a (3), c (2), x (0)
    assert items_of(model.first.retrieve(u3, 3), "u3@test") == ["a", "c", "x"]
    # shared words with "blue mug, green tea, red mug": x 2 (green tea), c 1, a 0
    run = model.retrieve(u3, 3)
    assert items_of(run, "u3@test") == ["x", "c", "a"]
    assert run["rank"].to_list() == [1, 2, 3] and run["score"].is_sorted(descending=True)
    user = llm_server.fake.bodies[0]["messages"][-1]["content"]
    assert "History:\n- Blue mug\n- Green tea\n- Red mug\n" in user
    assert "[1] Steel kettle\n[2] Green teapot\n[3] Green tea sampler" in user
    # only the top 2 go to the LLM (c before a); x keeps its first-stage place below them
    two = built(params, train, tmp_path, candidates=2)
    assert items_of(two.retrieve(u3, 3), "u3@test") == ["c", "a", "x"]
    assert items_of(two.retrieve(u3, 1), "u3@test") == ["c"]


def test_search_first_stage_and_diagnostics(llm_server, params, tmp_path) -> None:
    items = pl.DataFrame({"item_id": list(PRODUCTS), "text": list(PRODUCTS.values())})
    queries = pl.DataFrame({"query_id": ["q1", "q2"], "text": ["cordless drill", "steel lamp"]})
    spec = {**params, "components": {"bm25": {"family": "bm25", "stemmer": "none"}}}
    spec |= {"first_stage": "bm25", "cost_per_1k_prompt_tokens": 0.5}
    spec["cost_per_1k_completion_tokens"] = 2.0
    model = built(spec, TrainData(items, queries.head(0), pl.DataFrame()), tmp_path)
    assert model.query_input == "text"
    first = model.first.retrieve(queries, 5)
    run = model.retrieve(queries, 5)
    for qid, text in (("q1", "cordless drill"), ("q2", "steel lamp")):
        stage = items_of(first, qid)
        body = next(b for b in llm_server.fake.bodies if f"Query: {text}" in str(b))
        top = [stage[i - 1] for i in llm_server.fake.ranking(body["messages"][-1]["content"])]
        assert items_of(run, qid) == top + [i for i in stage[3:] if i not in top]
        assert len(items_of(run, qid)) == len(stage)  # k items whenever the first stage has them
    diag = model.diagnostics(queries, 5)
    assert all(LEGAL_KEY.match(key) for key in diag), sorted(diag)
    assert diag["llm.requests"] == 2 and diag["llm.cached"] == 0 and diag["llm.queries"] == 2
    prompt = sum(len(m["content"].split()) for b in llm_server.fake.bodies for m in b["messages"])
    assert diag["llm.prompt_tokens"] == prompt > 0 and diag["llm.completion_tokens"] > 0
    cost = (prompt * 0.5 + diag["llm.completion_tokens"] * 2.0) / 1000
    assert diag["llm.cost"] == pytest.approx(cost)
    assert diag["llm.cost_per_1000_queries"] == pytest.approx(cost / 2 * 1000)
    assert diag["llm.repairs.missing"] == 0 and diag["llm.repairs.unparsable"] == 0


def test_second_run_is_all_cache_hits(next_item, params, llm_server, tmp_path, capsys) -> None:
    queries, train = next_item
    params = {**params, "cost_per_1k_prompt_tokens": 1.0, "cost_per_1k_completion_tokens": 3.0}
    model = built(params, train, tmp_path)
    first = model.retrieve(queries, 3)
    calls = llm_server.fake.calls
    assert calls == queries.height
    spent = model.diagnostics(queries, 3)
    again = built(params, train, tmp_path)  # a new process would start from the cache alone
    capsys.readouterr()
    assert again.retrieve(queries, 3).equals(first)
    assert llm_server.fake.calls == calls  # zero requests
    assert capsys.readouterr().out == ""  # no line per all-cached call (latency loops)
    diag = again.diagnostics(queries, 3)
    assert diag["llm.requests"] == 0 and diag["llm.cached"] == calls
    assert diag["llm.cost"] == 0 and diag["llm.prompt_tokens"] == 0  # nothing spent now
    # the cache entries keep each reply's usage: the cost per 1,000 queries is still known
    assert diag["llm.cost_per_1000_queries"] == pytest.approx(spent["llm.cost_per_1000_queries"])
    assert spent["llm.cost_per_1000_queries"] == pytest.approx(1000 * spent["llm.cost"] / 4)
    assert len(list((Path(params["cache_dir"]) / "rerank").glob("*.json"))) == calls


def test_resume_after_a_503_midway(next_item, params, llm_server, tmp_path) -> None:
    queries, train = next_item
    fake = llm_server.fake
    fake.fail = lambda n: "503" if n >= 3 else None  # batch 1 (2 requests) answered, then 503s
    with pytest.raises(LLMError, match=r"HTTP 503.*after 2 attempts"):
        built(params, train, tmp_path).retrieve(queries, 3)
    assert fake.ok.total() == 2 and len(list(Path(params["cache_dir"]).rglob("*.json"))) == 2
    fake.fail = lambda n: None  # healed
    model = built(params, train, tmp_path)
    run = model.retrieve(queries, 3)
    assert run["query_id"].n_unique() == queries.height
    assert fake.ok.total() == queries.height and set(fake.ok.values()) == {1}  # none twice
    assert model.diagnostics(queries, 3)["llm.cached"] == 2


def test_timeout_raises_or_keeps_the_first_stage(next_item, params, llm_server, tmp_path) -> None:
    queries, train = next_item
    llm_server.fake.fail = lambda n: "hang"
    fast = {**params, "timeout": 0.1, "max_retries": 0}
    with pytest.raises(LLMError, match=r"timed out after 0.1 s"):
        built(fast, train, tmp_path).retrieve(queries, 3)
    lenient = built(fast, train, tmp_path, on_error="first_stage")
    ranks = ["query_id", "item_id", "rank"]
    stage = lenient.first.retrieve(queries, 3).select(ranks)
    assert lenient.retrieve(queries, 3).select(ranks).sort(ranks).equals(stage.sort(ranks))
    assert lenient.diagnostics(queries, 3)["llm.failed"] == queries.height


@pytest.mark.parametrize(
    ("style", "repairs"),
    [
        ("fenced", {}),
        ("prose", {}),
        ("bare", {}),
        ("numbers", {}),
        ("repairs", {"missing": 1, "duplicated": 1, "invented": 1}),
        ("garbage", {"unparsable": 1}),
    ],
)
def test_answer_styles_and_repairs(next_item, params, llm_server, tmp_path, style, repairs):
    queries, train = next_item
    u3 = queries.filter(query_id="u3@test")
    llm_server.fake.rerank_style = style
    model = built(params, train, tmp_path)
    got = items_of(model.retrieve(u3, 3), "u3@test")
    # "repairs" drops the last (a), keeps x and c: a comes back at the end; garbage: first stage
    assert got == (["a", "c", "x"] if style == "garbage" else ["x", "c", "a"])
    diag = model.diagnostics(u3, 3)
    assert {k[12:]: v for k, v in diag.items() if k.startswith("llm.repairs.") and v} == repairs


def test_a_broken_http_reply_is_not_retried(next_item, params, llm_server, tmp_path) -> None:
    queries, train = next_item
    llm_server.fake.fail = lambda n: "broken"
    with pytest.raises(LLMError, match="malformed reply"):
        built(params, train, tmp_path, max_retries=3).retrieve(queries.head(1), 3)
    assert llm_server.fake.calls == 1


def test_rationales_are_kept_and_saved(next_item, params, llm_server, tmp_path) -> None:
    queries, train = next_item
    model = built(params, train, tmp_path, rationale=True, rationale_dir=str(tmp_path / "why"))
    model.retrieve(queries, 3)
    assert '"rationale"' in llm_server.fake.bodies[0]["messages"][-1]["content"]
    frame = model.rationales_frame()
    assert frame["query_id"].to_list() == sorted(queries["query_id"].to_list())
    assert frame.filter(query_id="u3@test")["rationale"].item() == "candidate 3 matches best"
    model.close()
    assert pl.read_parquet(tmp_path / "why" / "rr.parquet").equals(frame)


def test_save_and_open_round_trip(next_item, params, tmp_path) -> None:
    queries, train = next_item
    model = built(params, train, tmp_path)
    model_dir, index_dir = tmp_path / "model", tmp_path / "index"
    model_dir.mkdir()
    index_dir.mkdir()
    model.save(model_dir)
    load(model_dir, ModelContext()).build_index(train.items, index_dir)
    reopened = open_model(model_dir, index_dir, ModelContext())
    assert reopened.titles == TITLES
    assert reopened.retrieve(queries, 3).equals(model.retrieve(queries, 3))


def test_without_an_endpoint_it_says_so(next_item, llm_env, monkeypatch, tmp_path) -> None:
    queries, train = next_item
    spec = {"family": "llm_rerank", "components": {"pop": {"family": "popularity"}}}
    cls = type(create("rr", spec, ModelContext()))
    reason = cls.unavailable_reason(spec)
    assert reason == (
        "llm_rerank needs params base_url and model (or $SHELFLAB_LLM_URL / "
        "$SHELFLAB_LLM_MODEL); skipped"
    )
    model = built(spec, train, tmp_path)  # creating, fitting and indexing need no endpoint
    with pytest.raises(ConfigError, match=r"model 'rr': llm_rerank needs params base_url"):
        model.retrieve(queries, 3)
    monkeypatch.setenv("SHELFLAB_LLM_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("SHELFLAB_LLM_MODEL", "local-model")
    assert cls.unavailable_reason(spec) is None


def test_params_are_checked() -> None:
    spec = {"family": "llm_rerank", "components": {"pop": {"family": "popularity"}}}
    spec["first_stage"] = "pop"
    with pytest.raises(ConfigError, match="first_stage"):
        create("rr", {**spec, "first_stage": "bm25"}, ModelContext())
    two = {"pop": {"family": "popularity"}, "knn": {"family": "itemknn"}}
    with pytest.raises(ConfigError, match="one component"):
        create("rr", {**spec, "components": two}, ModelContext())
    with pytest.raises(ConfigError, match="on_error"):
        create("rr", {**spec, "on_error": "ignore"}, ModelContext())
