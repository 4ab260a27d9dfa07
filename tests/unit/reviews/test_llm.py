"""The optional LLM backend against a local OpenAI-protocol server (tests/plugins/llm_server.py):
parsing, the on-disk cache,
resuming after a failure without resending anything, retries and config errors."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from plugins.llm_server import LLM_KEY_ENV, LLMServer

from shelflab.errors import ConfigError, ShelfLabError
from shelflab.llm.client import LLMError
from shelflab.reviews.llm import (
    llm_keywords,
    llm_summaries,
    parse_keywords,
    parse_summary,
    reviews_text,
)

KEY_ENV = LLM_KEY_ENV


@pytest.fixture
def server(llm_server: LLMServer) -> LLMServer:
    return llm_server


@pytest.fixture
def cfg(llm_cfg: dict[str, Any]) -> dict[str, Any]:
    return llm_cfg


def reviews_for(n: int) -> dict[str, list[str]]:
    return {f"p{i:02d}": [f"item{i:02d} Sturdy drill", "  great   battery life "] for i in range(n)}


def cached_items(cfg: dict[str, Any], task: str) -> list[str]:
    """The item markers ("item03" for item "p03") of the cache entries written for `task`."""
    files = (Path(cfg["cache_dir"]) / task).glob("*.json")
    return sorted("item" + json.loads(f.read_text())["item_id"][1:] for f in files)


# --------------------------------------------------------------------------- end to end


def test_keywords_and_summaries_parse_and_cache(server: LLMServer, cfg: dict[str, Any]) -> None:
    keywords = llm_keywords(reviews_for(5), cfg)
    assert list(keywords) == [f"p{i:02d}" for i in range(5)]
    assert keywords["p03"] == ["item03", "sturdy", "drill"]
    descriptions = {"p2": "item02 A cordless drill with two batteries.", "p1": "   ", "p0": ""}
    descriptions["p3"] = "item03 Steel shelf, 40 inch."
    summaries = llm_summaries(descriptions, cfg)
    assert summaries == {
        "p0": "",
        "p1": "",
        "p2": "item02 A cordless.",
        "p3": "item03 Steel shelf,.",
    }
    assert server.fake.calls == 5 + 2  # empty descriptions are never sent
    assert server.fake.rejected == 0  # the bearer token was sent
    assert len(cached_items(cfg, "keywords")) == 5
    assert len(cached_items(cfg, "summary")) == 2
    body = server.fake.bodies[0]
    assert body["model"] == "fake-model" and body["temperature"] == 0
    assert "max_tokens" not in body


def test_second_run_makes_zero_calls(server: LLMServer, cfg: dict[str, Any], capsys) -> None:
    first = llm_keywords(reviews_for(4), cfg)
    calls = server.fake.calls
    assert llm_keywords(reviews_for(4), cfg) == first
    assert server.fake.calls == calls == 4
    assert "all 4 request(s) cached" in capsys.readouterr().out


def test_identical_inputs_share_one_request(server: LLMServer, cfg: dict[str, Any]) -> None:
    same = ["item01 red kettle"]
    result = llm_keywords({"b": same, "a": same, "c": []}, cfg)
    assert result == {"a": ["item01", "red", "kettle"], "b": ["item01", "red", "kettle"], "c": []}
    assert server.fake.calls == 1


@pytest.mark.parametrize(("mode", "reason"), [("500", "HTTP 500"), ("drop", "connection failed")])
def test_failure_mid_run_resumes_without_resending(
    server: LLMServer, cfg: dict[str, Any], mode: str, reason: str
) -> None:
    fake = server.fake
    fake.fail = lambda n: mode if n >= 5 else None  # batch 1 (3) and one of batch 2 answered
    items = reviews_for(8)
    with pytest.raises(ShelfLabError) as info:
        llm_keywords(items, cfg)
    message = str(info.value)
    assert cfg["base_url"] + "/chat/completions" in message and reason in message
    assert re.search(r"item 'p0[3-5]'", message) and "after 2 attempts" in message
    answered = sorted(fake.ok)
    assert len(answered) == 4
    assert cached_items(cfg, "keywords") == answered  # exactly what was answered, all of it
    assert sorted(fake.failed.values()) == [2, 2]  # two items, each tried 1 + max_retries times

    fake.fail = lambda n: None  # healed
    ok_before = Counter(fake.ok)
    result = llm_keywords(items, cfg)
    assert result == {f"p{i:02d}": [f"item{i:02d}", "sturdy", "drill"] for i in range(8)}
    resent = fake.ok - ok_before
    assert sorted(resent) == sorted(set(f"item{i:02d}" for i in range(8)) - set(answered))
    assert all(count == 1 for count in fake.ok.values()) and len(fake.ok) == 8  # never twice
    # the failed attempts: only items not answered in run 1, none at all in run 2
    assert set(fake.failed) <= set(resent) and fake.failed.total() == 4


def test_retry_once_on_503(server: LLMServer, cfg: dict[str, Any], capsys) -> None:
    server.fake.fail = lambda n: "503" if n == 1 else None
    assert llm_keywords(reviews_for(1), cfg) == {"p00": ["item00", "sturdy", "drill"]}
    assert server.fake.failed == {"item00": 1} and server.fake.ok == {"item00": 1}
    assert "1 retried" in capsys.readouterr().out


def test_401_is_not_retried(server: LLMServer, cfg: dict[str, Any], monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key")
    with pytest.raises(LLMError) as info:
        llm_keywords(reviews_for(1), {**cfg, "max_retries": 3})
    err = info.value
    assert err.status == 401 and err.attempts == 1 and err.item_id == "p00"
    assert "HTTP 401 Unauthorized" in str(err) and "item 'p00'" in str(err)
    assert "sk-wrong-key" not in str(err)  # the echoed key is redacted
    assert server.fake.rejected == 1 and server.fake.calls == 0  # one attempt, no retry


def test_malformed_reply_is_not_retried(server: LLMServer, cfg: dict[str, Any]) -> None:
    server.fake.fail = lambda n: "broken"
    with pytest.raises(LLMError, match=r"item 'p00'.*malformed reply"):
        llm_keywords(reviews_for(1), {**cfg, "max_retries": 3})
    assert server.fake.calls == 1
    assert cached_items(cfg, "keywords") == []


def test_timeout_and_connection_refused(server: LLMServer, cfg: dict[str, Any], free_port) -> None:
    server.fake.fail = lambda n: "hang"
    with pytest.raises(LLMError, match=r"timed out after 0.1 s"):
        llm_summaries({"p0": "item00 a lamp"}, {**cfg, "timeout": 0.1, "max_retries": 0})
    dead = {**cfg, "base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": 0}
    with pytest.raises(LLMError, match=r"127\.0\.0\.1.*connection failed.*refused"):
        llm_summaries({"p0": "item00 a lamp"}, dead)


@pytest.mark.parametrize("style", ["fenced", "plain"])
def test_fenced_and_plain_replies_are_parsed(server: LLMServer, cfg: dict[str, Any], style) -> None:
    server.fake.style = style
    result = llm_keywords(reviews_for(2), cfg)
    assert result["p01"] == ["item01", "sturdy", "drill"]


# --------------------------------------------------------------------------- parsing + input


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('["Drill", "cordless drill", "drill"]', ["drill", "cordless drill"]),
        ('```json\n["A", "B"]\n```', ["a", "b"]),
        ("```\n['a', 'b']\n```", ["a", "b"]),  # not JSON: falls back to the split
        ('Sure! Here they are: ["x y", "z"]. Hope it helps.', ["x y", "z"]),
        ('{"keywords": ["Steel", "shelf"]}', ["steel", "shelf"]),
        (
            "Keywords: steel, Shelf;  40 inch\n- garage\n2. Storage.",
            ["steel", "shelf", "40 inch", "garage", "storage"],
        ),
        ('```json\n["cut", "off"', ["cut", "off"]),  # unclosed fence, truncated array
        ('["a", null, 3, {"k": 1}, ""]', ["a", "3"]),
        ("[]", []),
    ],
)
def test_parse_keywords(reply: str, expected: list[str]) -> None:
    assert parse_keywords(reply, 10) == expected


def test_parse_keywords_caps_count() -> None:
    assert parse_keywords(json.dumps([f"k{i}" for i in range(20)]), 4) == ["k0", "k1", "k2", "k3"]


def test_parse_summary() -> None:
    assert parse_summary('```\nSummary: "A  steel\nshelf."\n```') == "A steel shelf."
    with pytest.raises(ValueError):
        parse_summary("```\n```")


def test_reviews_text_is_truncated_deterministically() -> None:
    reviews = ["first  review", None, "", "x" * 30, "second " * 20]
    text = reviews_text(reviews, 60)
    assert text == reviews_text(list(reviews), 60) and len(text) <= 60
    assert text.splitlines() == ["- first review", "- " + "x" * 30]  # no room for a useful cut
    long_one = reviews_text(["word " * 100], 50)
    assert len(long_one) <= 50 and long_one.startswith("- word word") and not long_one.endswith(" ")


# --------------------------------------------------------------------------- config


def test_missing_base_url_or_model_is_a_config_error(cfg: dict[str, Any], monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"llm\.base_url \(or \$SHELFLAB_LLM_URL\)"):
        llm_keywords(reviews_for(1), {k: v for k, v in cfg.items() if k != "base_url"})
    with pytest.raises(ConfigError, match=r"llm\.model"):
        llm_summaries({"p0": "x"}, {**cfg, "model": ""})
    with pytest.raises(ConfigError, match="api_key_env"):
        llm_keywords({}, {**cfg, "api_key": "sk-in-params"})
    with pytest.raises(ConfigError, match="unknown llm option"):
        llm_keywords({}, {**cfg, "batchsize": 2})
    with pytest.raises(ConfigError, match="batch_size"):
        llm_keywords({}, {**cfg, "batch_size": 0})


def test_env_overrides_url_and_model(server: LLMServer, cfg: dict[str, Any], monkeypatch) -> None:
    monkeypatch.setenv("SHELFLAB_LLM_URL", cfg["base_url"] + "/")
    monkeypatch.setenv("SHELFLAB_LLM_MODEL", "env-model")
    params = {k: v for k, v in cfg.items() if k not in ("base_url", "model")}
    assert llm_summaries({"p0": "item00 a lamp"}, params) == {"p0": "item00 a lamp."}
    assert server.fake.bodies[0]["model"] == "env-model"


# --------------------------------------------------------------------------- in the pipeline


def test_enrichment_with_the_llm_backend(server: LLMServer, cfg: dict[str, Any], tmp_path) -> None:
    """The review track's enrichment with `keywords.backend: llm` and `summaries: true`: the
    server's keywords and summaries land in the item text; a second run makes no call."""
    import polars as pl

    from shelflab.reviews.enrich import enrich_items

    items = pl.DataFrame(
        {
            "item_id": ["a", "b"],
            "title": ["Drill", "Saw"],
            "description": ["item01 long text here", ""],
        }
    )
    reviews = pl.DataFrame(
        {
            "review_id": ["r1", "r2", "r3"],
            "query_id": ["q1", "q2", "q3"],
            "item_id": ["a", "a", "b"],
            "timestamp": [1, 2, 3],
            "summary": ["item01 strong", "", "item02 sharp"],
            "body": ["good drill", "battery lasts", "cuts well"],
        }
    )
    splits = pl.DataFrame({"query_id": ["q1", "q2", "q3"], "split": ["train"] * 3})
    params = {
        "fields": ["title", "keywords", "description"],
        "keywords": {"backend": "llm"},
        "summaries": True,
        "llm": cfg,
    }
    out, stats = enrich_items(items, reviews, splits, params, root=tmp_path)
    calls = server.fake.calls
    assert calls == 3  # two keyword requests, one summary (the empty description is skipped)
    text = dict(out.select("item_id", "text").iter_rows())
    assert "[Review Keywords] " in text["a"] and "[Description] " in text["a"]
    # the server's summary (its first three words) replaced the description
    assert text["a"].endswith("[Description] item01 long text.")
    assert stats["keyword_backend"] == "llm" and stats["items_with_keywords"] == 2
    enrich_items(items, reviews, splits, params, root=tmp_path)
    assert server.fake.calls == calls
