"""Cached, resumable batches of chat requests, shared by every LLM task.

Every answer is cached on disk as soon as it arrives, one small JSON file per request under
`cache_dir/<task>/<sha256>.json`, keyed by (task, prompt version, model, exact messages sent).
A cached key is never requested again, so a run that fails midway (the error names the URL, the
input and the HTTP status) resumes on rerun and only asks for what is still missing. Inputs whose
messages are identical share one request. Requests go out in batches of `batch_size` concurrent
calls (the concurrency limit); each entry also records the reply's token counts, so the cost of
a run can be told from its cache as well as from the requests it made.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from shelflab.atomic import write_json
from shelflab.llm.client import LLMConfig, LLMError, complete

T = TypeVar("T")
Messages = list[dict[str, str]]
PROGRESS_EVERY = 5.0  # seconds between progress lines of a long run


@dataclass(frozen=True)
class Job:
    """One request: its cache key, messages, and the inputs (same messages) it answers."""

    key: str
    messages: Messages
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A job's parsed answer, its token counts, and whether it came from the cache."""

    value: T
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


@dataclass
class BatchStats:
    """Counts over one or more runs: requests made, answers read from the cache, retries,
    requests that failed for good, and the tokens the requests made (cached ones excluded)."""

    requested: int = 0
    cached: int = 0
    retried: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: BatchStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def message_pair(system: str, user: str) -> Messages:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def cache_key(task: str, version: str, model: str, messages: Messages) -> str:
    """sha256 of (task, prompt version, model, exact messages sent)."""
    payload = {"task": task, "prompt_version": version, "model": model, "messages": messages}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def cache_path(cache_dir: str | Path, task: str, key: str) -> Path:
    return Path(cache_dir) / task / f"{key}.json"


def plan_jobs(
    conf: LLMConfig, task: str, version: str, messages_by_id: Mapping[str, Messages]
) -> list[Job]:
    """One job per distinct request, in the order of each one's first input."""
    by_key: dict[str, tuple[Messages, list[str]]] = {}
    for input_id, messages in messages_by_id.items():
        key = cache_key(task, version, conf.model or "", messages)
        by_key.setdefault(key, (messages, []))[1].append(input_id)
    return [Job(key, msgs, tuple(ids)) for key, (msgs, ids) in by_key.items()]


def run_jobs(
    conf: LLMConfig,
    task: str,
    version: str,
    jobs: list[Job],
    parse: Callable[[str], T],
    valid: Callable[[Any], bool],
    *,
    strict: bool = True,
    quiet_when_cached: bool = False,
) -> tuple[dict[str, Answer[T]], BatchStats, list[LLMError]]:
    """Answers by job key: cached keys from the cache, the rest requested in batches.

    `parse` turns a reply into the value cached (ValueError: a malformed reply, not retried);
    `valid` vets a cached value (an invalid one is re-requested). With `strict`, the first
    failure is raised after its batch (whose answers are already cached); otherwise all batches
    run and the failures are returned, their jobs absent from the answers. A progress line is
    printed at most every PROGRESS_EVERY seconds (and after the last batch or a failure);
    `quiet_when_cached` drops the line of a call that needed no request (a model retrieving
    one query at a time would print it per query)."""
    answers: dict[str, Answer[T]] = {}
    pending: list[Job] = []
    for job in jobs:
        cached = _read_cache(conf, task, job.key, valid)
        if cached is None:
            pending.append(job)
        else:
            answers[job.key] = cached
    stats = BatchStats(cached=len(answers))
    errors: list[LLMError] = []
    if not pending:
        if not quiet_when_cached:
            print(f"llm {task}: all {stats.cached} request(s) cached", flush=True)
        return answers, stats, errors
    size = conf.batch_size
    n_batches = -(-len(pending) // size)
    last_print = time.monotonic()
    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="shelflab-llm") as pool:
        for b in range(n_batches):
            batch = pending[b * size : (b + 1) * size]
            futures = [pool.submit(_answer, conf, task, version, job, parse) for job in batch]
            failed: list[LLMError] = []
            for job, future in zip(batch, futures, strict=True):
                exc = future.exception()
                if exc is not None:
                    if not isinstance(exc, LLMError):
                        raise exc
                    failed.append(exc)
                    continue
                answer, retries = future.result()
                answers[job.key] = answer
                stats.requested += 1
                stats.retried += retries
                stats.prompt_tokens += answer.prompt_tokens
                stats.completion_tokens += answer.completion_tokens
            stats.failed += len(failed)
            errors.extend(failed)
            now = time.monotonic()
            if not failed and b + 1 < n_batches and now - last_print < PROGRESS_EVERY:
                continue
            last_print = now
            note = f", {len(failed)} failed" if failed else ""
            print(
                f"llm {task}: batch {b + 1}/{n_batches}: {stats.requested}/{len(pending)} "
                f"requested, {stats.cached} cached, {stats.retried} retried{note}",
                flush=True,
            )
            if failed and strict:
                raise failed[0]
    return answers, stats, errors


def _answer(
    conf: LLMConfig, task: str, version: str, job: Job, parse: Callable[[str], T]
) -> tuple[Answer[T], int]:
    """Request, parse and cache one job; (answer, retries it took)."""
    input_id = job.ids[0]
    reply = complete(conf, job.messages, item_id=input_id)
    try:
        value = parse(reply.content)
    except ValueError as exc:
        raise LLMError(conf.url, input_id, f"malformed reply: {exc}") from None
    entry = {
        "task": task,
        "prompt_version": version,
        "model": conf.model,
        "item_id": input_id,  # the first input asking; others with the same messages share it
        "result": value,
        "reply": reply.content,
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
        },
    }
    write_json(entry, cache_path(conf.cache_dir, task, job.key))
    return Answer(value, reply.prompt_tokens, reply.completion_tokens), reply.retries


def _read_cache(
    conf: LLMConfig, task: str, key: str, valid: Callable[[Any], bool]
) -> Answer[Any] | None:
    """The cached answer for `key`, or None (missing, or unreadable: then it is re-requested
    and overwritten, which atomic writes make a can't-happen outside manual edits)."""
    path = cache_path(conf.cache_dir, task, key)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        print(f"llm {task}: ignoring unreadable cache entry {path}", flush=True)
        return None
    if not isinstance(entry, dict) or not valid(entry.get("result")):
        return None
    usage = entry.get("usage") if isinstance(entry.get("usage"), dict) else {}
    tokens = [usage.get(k) for k in ("prompt_tokens", "completion_tokens")]
    p, c = (t if isinstance(t, int) and not isinstance(t, bool) and t > 0 else 0 for t in tokens)
    return Answer(entry["result"], p, c, cached=True)
