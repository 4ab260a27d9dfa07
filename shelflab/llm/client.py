"""A minimal client for OpenAI-compatible chat endpoints (stdlib only), and its config.

The LLM backend is optional: nothing in the pipeline needs it unless params ask for it. The
config comes from a params.yaml section; `SHELFLAB_LLM_URL` / `SHELFLAB_LLM_MODEL` override
`base_url` / `model`, and the API key is read only from the env var named by `api_key_env`
(never from params, never printed: errors redact it).

`chat()` sends one `POST {base_url}/chat/completions` with `temperature: 0` and returns
`choices[0].message.content`; `complete()` returns it with the reply's `usage` token counts
(what cost accounting needs). Both retry 429, 5xx, timeouts and connection errors with
exponential backoff (honouring `Retry-After`), never other 4xx, and raises `LLMError` naming the
URL, the item and the HTTP status/reason.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from shelflab.errors import ConfigError, ShelfLabError

ENV_URL = "SHELFLAB_LLM_URL"
ENV_MODEL = "SHELFLAB_LLM_MODEL"
ENDPOINT = "/chat/completions"
_BODY_SNIPPET = 300  # chars of an error body worth showing in a one-line message


class LLMError(ShelfLabError):
    """A request that failed for good: names the URL, the item and the status/reason."""

    def __init__(
        self,
        url: str,
        item_id: str,
        reason: str,
        *,
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        self.url = url
        self.item_id = item_id
        self.status = status
        self.reason = reason
        self.attempts = attempts
        what = f"HTTP {status} {reason}" if status is not None else reason
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"LLM request for item {item_id!r} to {url} failed: {what}{tries}")


class _Retryable(Exception):
    """Internal: a transient failure worth another attempt (429, 5xx, timeout, connection)."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class LLMConfig:
    """The `llm` params section; see the module docstring for the env overrides."""

    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: int = 8
    timeout: float = 60.0
    max_retries: int = 3
    retry_base_delay: float = 1.0  # seconds before the first retry, doubled for each next one
    retry_max_delay: float = 30.0
    cache_dir: str = ".cache/shelflab/llm"
    max_keywords: int = 10
    max_input_chars: int = 6000
    max_tokens: int | None = None  # sent only when set (some servers reject the field)
    api_key: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> LLMConfig:
        """Build from a params mapping plus the env; unknown keys or bad values raise
        ConfigError. Missing base_url/model are only an error in `require_endpoint()`."""
        params = dict(params or {})
        if "api_key" in params:
            raise ConfigError(
                "llm.api_key is not read from params: put the key in an environment variable "
                "and name it with llm.api_key_env"
            )
        known = {f.name for f in fields(cls)} - {"api_key"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"unknown llm option(s) {', '.join(unknown)} (expected: {', '.join(sorted(known))})"
            )
        for env, key in ((ENV_URL, "base_url"), (ENV_MODEL, "model")):
            if os.environ.get(env, "").strip():
                params[key] = os.environ[env].strip()
        cfg = cls(**params)
        cfg._validate()
        api_key = (os.environ.get(cfg.api_key_env, "").strip() or None) if cfg.api_key_env else None
        return replace(cfg, api_key=api_key)

    def _validate(self) -> None:
        for name in ("batch_size", "max_keywords", "max_input_chars"):
            _check_number(name, getattr(self, name), minimum=1, integer=True)
        _check_number("max_retries", self.max_retries, minimum=0, integer=True)
        for name in ("timeout", "retry_base_delay", "retry_max_delay"):
            _check_number(name, getattr(self, name), minimum=0, integer=False)
        if self.max_tokens is not None:
            _check_number("max_tokens", self.max_tokens, minimum=1, integer=True)
        for name in ("base_url", "model", "api_key_env", "cache_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"llm.{name} must be a string, got {value!r}")

    def require_endpoint(self) -> None:
        """ConfigError unless base_url and model are set (called when the backend is used)."""
        missing = [k for k in ("base_url", "model") if not (getattr(self, k) or "").strip()]
        if missing:
            env = {"base_url": ENV_URL, "model": ENV_MODEL}
            hints = ", ".join(f"llm.{k} (or ${env[k]})" for k in missing)
            raise ConfigError(f"the LLM backend needs {hints}: set it in params.yaml or the env")
        if not self.base_url.startswith(("http://", "https://")):  # type: ignore[union-attr]
            raise ConfigError(
                f"llm.base_url must start with http:// or https://, got {self.base_url!r}"
            )

    @property
    def url(self) -> str:
        """The chat-completions URL (a base_url already ending in it is taken as is)."""
        base = (self.base_url or "").strip().rstrip("/")
        return base if base.endswith(ENDPOINT) else base + ENDPOINT


def _check_number(name: str, value: Any, *, minimum: float, integer: bool) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"llm.{name} must be {kind} >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class Reply:
    """One chat completion: its text, the retries it took and the server's token counts
    (0 when the server sends no `usage`, as some local servers do)."""

    content: str
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def chat(cfg: LLMConfig, messages: list[dict[str, str]], *, item_id: str) -> tuple[str, int]:
    """The reply text of one chat completion and the number of retries it took."""
    reply = complete(cfg, messages, item_id=item_id)
    return reply.content, reply.retries


def complete(cfg: LLMConfig, messages: list[dict[str, str]], *, item_id: str) -> Reply:
    """One chat completion with its token counts.

    Raises LLMError (not retried: other 4xx and malformed replies; retried up to
    `max_retries` times: 429, 5xx, timeouts, connection errors)."""
    body = {"model": cfg.model, "messages": messages, "temperature": 0}
    if cfg.max_tokens is not None:
        body["max_tokens"] = cfg.max_tokens
    data = json.dumps(body).encode("utf-8")
    for attempt in range(cfg.max_retries + 1):
        try:
            return replace(_parse_reply(cfg, _post(cfg, data, item_id), item_id), retries=attempt)
        except _Retryable as exc:
            if attempt == cfg.max_retries:
                raise LLMError(
                    cfg.url,
                    item_id,
                    _redact(cfg, exc.reason),
                    status=exc.status,
                    attempts=attempt + 1,
                ) from None
            time.sleep(_backoff(cfg, attempt, exc.retry_after))
    raise AssertionError("unreachable")  # the loop always returns or raises


def _post(cfg: LLMConfig, data: bytes, item_id: str) -> bytes:
    """The raw response body of a 2xx reply; _Retryable or LLMError otherwise."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    request = urllib.request.Request(cfg.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=cfg.timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        reason = _http_reason(exc)
        if exc.code == 429 or exc.code >= 500:
            raise _Retryable(reason, exc.code, _retry_after(exc)) from None
        raise LLMError(cfg.url, item_id, _redact(cfg, reason), status=exc.code) from None
    except TimeoutError:
        raise _Retryable(f"timed out after {cfg.timeout:g} s") from None
    except urllib.error.URLError as exc:
        # connection refused / DNS failure / timeout while connecting
        if isinstance(exc.reason, TimeoutError):
            raise _Retryable(f"timed out after {cfg.timeout:g} s") from None
        raise _Retryable(f"connection failed: {exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        # the server dropped the connection or sent a broken response
        raise _Retryable(f"connection failed: {type(exc).__name__}: {exc}") from None


def _parse_reply(cfg: LLMConfig, raw: bytes, item_id: str) -> Reply:
    """choices[0].message.content and the usage counts, or LLMError('malformed reply ...')."""
    try:
        body = json.loads(raw)
        content = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        snippet = raw[:_BODY_SNIPPET].decode("utf-8", "replace")
        raise LLMError(
            cfg.url, item_id, f"malformed reply (no choices[0].message.content): {snippet!r}"
        ) from None
    if not isinstance(content, str) or not content.strip():
        raise LLMError(cfg.url, item_id, f"malformed reply (empty content: {content!r})")
    usage = body.get("usage") if isinstance(body, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return Reply(
        content, 0, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    )


def _count(value: Any) -> int:
    """A token count from `usage`; anything but a non-negative integer counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _http_reason(exc: urllib.error.HTTPError) -> str:
    """The status reason plus the start of the body (where servers say what was wrong)."""
    try:
        body = exc.read()[:_BODY_SNIPPET].decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        body = ""
    reason = str(exc.reason or "")
    return f"{reason}: {' '.join(body.split())}" if body else reason


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _backoff(cfg: LLMConfig, attempt: int, retry_after: float | None) -> float:
    """Exponential delay with jitter, so concurrent requests don't retry in lockstep."""
    if retry_after is not None:
        return min(retry_after, cfg.retry_max_delay)
    delay = min(cfg.retry_base_delay * 2**attempt, cfg.retry_max_delay)
    return delay * (0.5 + random.random() / 2)


def _redact(cfg: LLMConfig, text: str) -> str:
    """Servers sometimes echo the key back; never let it reach a message or log."""
    return text.replace(cfg.api_key, "***") if cfg.api_key else text
