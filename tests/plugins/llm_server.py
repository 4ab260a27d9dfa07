"""A real OpenAI-protocol server on 127.0.0.1 (port 0) for the LLM tests: it reads the prompt it
is sent and answers it, review keywords and summaries as well as candidate rerankings, with the
reply's `usage` token counts; `fake.fail` makes chosen calls fail (500/503/drop/hang/broken)
and `fake.style` / `fake.rerank_style` choose how replies are written (malformed ones too)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

LLM_TOKEN = "sk-test-0123456789"
LLM_KEY_ENV = "SHELFLAB_TEST_LLM_KEY"
MARKER = re.compile(r"\bitem\d+\b")  # review inputs name their item, e.g. "item03"
CANDIDATE = re.compile(r"^\[(\d+)\] (.*)$", re.M)  # a rerank prompt's "[3] title" lines
WORD = re.compile(r"[a-z0-9]+")


class FakeLLM:
    """What the server answers and what it saw: calls counted per input (the item marker, else
    a digest of the prompt), answered and failed attempts apart."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.rejected = 0  # requests refused for a bad bearer token
        self.ok: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        # call number (1-based) -> None (answer) | "500" | "503" | "drop" | "hang" | "broken"
        self.fail: Callable[[int], str | None] = lambda n: None
        self.style = "json"  # how keyword replies are written: json | fenced | plain
        # how rankings are written: json | fenced | prose | bare | numbers | repairs | garbage
        self.rerank_style = "json"

    @staticmethod
    def key(user: str) -> str:
        marker = MARKER.search(user)
        return marker.group() if marker else hashlib.sha256(user.encode()).hexdigest()[:12]

    def keywords(self, reviews: str) -> list[str]:
        words = WORD.findall(reviews.lower())
        return list(dict.fromkeys(words))[:3]

    def reply(self, user: str) -> str:
        if "Candidates:\n" in user:
            return self.rerank(user)
        if "Description:\n" in user:
            words = user.split("Description:\n", 1)[1].split()[:3]
            return f'"Summary: {" ".join(words)}."'
        kws = self.keywords(user.split("Reviews:\n", 1)[1])
        if self.style == "fenced":
            return "Here you go:\n```json\n" + json.dumps([k.upper() for k in kws]) + "\n```"
        if self.style == "plain":
            return "Keywords: " + ", ".join(kws[:2]) + "\n- " + kws[-1] + "\n" + kws[0]
        return json.dumps(kws)

    def ranking(self, user: str) -> list[int]:
        """The candidates by words shared with the query/history text (the part before the
        candidate list), most first; ties keep the prompt's order."""
        context, _, listing = user.partition("Candidates:\n")
        wanted = set(WORD.findall(context.split("\n", 1)[-1].lower()))
        cands = [(int(n), set(WORD.findall(t.lower()))) for n, t in CANDIDATE.findall(listing)]
        return [n for n, words in sorted(cands, key=lambda c: (-len(c[1] & wanted), c[0]))]

    def rerank(self, user: str) -> str:
        order = self.ranking(user)
        why = f"candidate {order[0]} matches best" if order else ""
        style = self.rerank_style
        if style == "fenced":
            return "Sure.\n```json\n" + json.dumps({"ranking": order, "rationale": why}) + "\n```"
        if style == "prose":
            return f'Ranking below. {{"ranking": {order}}} Done.'
        if style == "bare":
            return json.dumps(order)
        if style == "numbers":
            return "Best to worst: " + ", ".join(map(str, order))
        if style == "repairs":  # drops the last, repeats the first, invents one past the end
            broken = [order[0], *order[:-1], len(order) + 5]
            return json.dumps({"ranking": broken, "rationale": why})
        if style == "garbage":
            return "I cannot rank these products."
        return json.dumps({"ranking": order, "rationale": why})


class Handler(BaseHTTPRequestHandler):
    server: LLMServer

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "not found"}})
        auth = self.headers.get("Authorization", "")
        if auth != f"Bearer {LLM_TOKEN}":
            with fake.lock:
                fake.rejected += 1
            # real servers echo (part of) the key: the client must redact it
            return self._send(401, {"error": {"message": f"Incorrect API key: {auth[7:]}"}})
        user = body["messages"][-1]["content"]
        with fake.lock:
            fake.calls += 1
            mode = fake.fail(fake.calls)
            fake.bodies.append(body)
            (fake.failed if mode else fake.ok)[fake.key(user)] += 1
        if mode == "drop":
            self.close_connection = True  # no status line at all
            return None
        if mode == "hang":
            time.sleep(0.5)
            return None
        if mode in ("500", "503"):
            return self._send(int(mode), {"error": {"message": "server trouble"}})
        if mode == "broken":
            return self._send_raw(200, b"<html>not json</html>")
        content = fake.reply(user)
        prompt = sum(len(m["content"].split()) for m in body["messages"])
        usage = {"prompt_tokens": prompt, "completion_tokens": len(content.split())}
        message = {"role": "assistant", "content": content}
        return self._send(200, {"choices": [{"index": 0, "message": message}], "usage": usage})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        self._send_raw(status, json.dumps(payload).encode())

    def _send_raw(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LLMServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)  # port 0: the OS picks a free one
        self.fake = FakeLLM()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left is expected in the timeout tests


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    srv = LLMServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test key in its env var, and no endpoint override from the caller's shell."""
    monkeypatch.setenv(LLM_KEY_ENV, LLM_TOKEN)
    for env in ("SHELFLAB_LLM_URL", "SHELFLAB_LLM_MODEL"):
        monkeypatch.delenv(env, raising=False)


@pytest.fixture
def llm_cfg(llm_server: LLMServer, llm_env: None, tmp_path: Path) -> dict[str, Any]:
    """An `llm` params section pointing at the server, with fast retries and a fresh cache."""
    return {
        "base_url": llm_server.base_url,
        "model": "fake-model",
        "api_key_env": LLM_KEY_ENV,
        "batch_size": 3,
        "timeout": 5,
        "max_retries": 1,
        "retry_base_delay": 0.01,
        "cache_dir": str(tmp_path / "cache"),
        "max_keywords": 10,
    }
