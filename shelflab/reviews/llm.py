"""Optional LLM backend for item text: review keywords and description summaries.

The default review keywords come from the offline TF-IDF extractor; this module is the
alternative that asks any OpenAI-compatible endpoint (see `shelflab.reviews.llm_client` for the
config, the env overrides and the retry policy). Nothing in the pipeline requires it.

Every answer is cached on disk as soon as it arrives, one small JSON file per request under
`cache_dir/<task>/<sha256>.json`, keyed by (task, prompt version, model, exact messages sent).
A cached key is never requested again, so a run that fails midway (the error names the URL, the
item and the HTTP status) resumes on rerun and only asks for the items still missing. Items whose
input is identical share one request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from shelflab.atomic import write_json
from shelflab.reviews.llm_client import LLMConfig, LLMError, chat

T = TypeVar("T")

# Bump a version whenever its prompt or its parsing changes: old cache entries then miss.
PROMPT_VERSIONS = {"keywords": "keywords-v1", "summary": "summary-v1"}
_MIN_CLIPPED = 40  # a review cut shorter than this adds noise rather than signal

_KEYWORDS_SYSTEM = (
    "You extract search keywords for products in an e-commerce catalogue. "
    "You answer with a JSON array of strings and nothing else."
)
_KEYWORDS_USER = (
    "Below are customer reviews of one product. List up to {n} short keyword phrases "
    "(1 to 3 words each) that describe the product itself: what it is, its material, features, "
    "uses and qualities. Leave out opinions about shipping, price or the seller. Reply with a "
    "JSON array of lowercase strings only.\n\nReviews:\n{text}"
)
_SUMMARY_SYSTEM = "You write short, factual product summaries for an e-commerce catalogue."
_SUMMARY_USER = (
    "Summarise this product description in one or two sentences. Keep the concrete facts "
    "(product type, material, size, key features) and leave out marketing language. Reply with "
    "the summary only.\n\nDescription:\n{text}"
)


# --------------------------------------------------------------------------- public API


def llm_keywords(
    item_reviews: Mapping[str, Iterable[str | None]], cfg: Mapping[str, Any] | LLMConfig
) -> dict[str, list[str]]:
    """Up to `max_keywords` lowercase keyword phrases per item, from its review texts.

    Reviews are used in the order given (pass them in a stable order, e.g. by time, or the cache
    keys change) and cut to `max_input_chars`. Items without any review text get [] and no
    request. Returns every item, ordered by item id; raises ShelfLabError on failure."""
    conf = _config(cfg)
    inputs = {
        item: reviews_text(reviews, conf.max_input_chars) for item, reviews in item_reviews.items()
    }
    return _run(
        conf,
        "keywords",
        inputs,
        lambda text: _messages(
            _KEYWORDS_SYSTEM, _KEYWORDS_USER.format(n=conf.max_keywords, text=text)
        ),
        lambda reply: parse_keywords(reply, conf.max_keywords),
        lambda cached: _is_str_list(cached) and len(cached) <= conf.max_keywords,
        empty=[],
    )


def llm_summaries(
    descriptions: Mapping[str, str | None], cfg: Mapping[str, Any] | LLMConfig
) -> dict[str, str]:
    """A one-to-two sentence summary per item description (cut to `max_input_chars`).

    Empty descriptions give "" and no request. Returns every item, ordered by item id; raises
    ShelfLabError on failure."""
    conf = _config(cfg)
    inputs = {
        item: clip(_squash(text), conf.max_input_chars) for item, text in descriptions.items()
    }
    return _run(
        conf,
        "summary",
        inputs,
        lambda text: _messages(_SUMMARY_SYSTEM, _SUMMARY_USER.format(text=text)),
        parse_summary,
        lambda cached: isinstance(cached, str) and bool(cached),
        empty="",
    )


# --------------------------------------------------------------------------- input texts


def reviews_text(reviews: Iterable[str | None], max_chars: int) -> str:
    """Reviews as "- text" lines, whole ones while they fit in `max_chars`; the one that crosses
    the limit is cut at a word boundary (deterministic: depends only on the input)."""
    lines: list[str] = []
    used = 0
    for review in reviews:
        text = _squash(review)
        if not text:
            continue
        line = f"- {text}"
        room = max_chars - used - (1 if lines else 0)  # 1 for the joining newline
        if len(line) > room:
            if room >= _MIN_CLIPPED or not lines:
                lines.append(clip(line, room))
            break
        lines.append(line)
        used += len(line) + (1 if len(lines) > 1 else 0)
    return "\n".join(lines)


def clip(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars`, at the last space when that keeps most of it."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    head = cut.rsplit(" ", 1)[0]
    return head if " " in cut and len(head) >= max_chars // 2 else cut


def _squash(text: Any) -> str:
    return " ".join(text.split()) if isinstance(text, str) else ""


def _messages(system: str, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# --------------------------------------------------------------------------- reply parsing

_FENCED = re.compile(r"```[\w+-]*[ \t]*\n?(.*?)```", re.S)
_LABEL = re.compile(r"^\s*(keywords?|key phrases|summary)\s*:\s*", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•]+\s*|\d+[.)]\s+)")  # "- x", "2. x"; not "3.5 inch"
_EDGE = " \t\"'`.,;:[]{}()"


def strip_fences(reply: str) -> str:
    """The body of the first ``` fenced block (an unclosed one too), else the reply stripped."""
    text = reply.strip()
    match = _FENCED.search(text)
    if match:
        return match.group(1).strip()
    if text.startswith("```"):  # cut off before the closing fence
        return text.split("\n", 1)[1].strip() if "\n" in text else ""
    return text


def parse_keywords(reply: str, max_keywords: int) -> list[str]:
    """Keyword phrases from a reply: a JSON array (fenced or embedded in prose, or an object
    holding one), else the text split on commas/semicolons/newlines. Lowercased, deduplicated,
    in order, at most `max_keywords`."""
    text = _LABEL.sub("", strip_fences(reply))
    items = _json_items(text)
    if items is None:
        items = re.split(r"[,;\n]", text)
    return _clean_keywords(items, max_keywords)


def parse_summary(reply: str) -> str:
    """The summary text of a reply: fences, a "Summary:" label and wrapping quotes removed."""
    text = " ".join(strip_fences(reply).split())
    for _ in range(2):  # 'Summary: "..."' and '"Summary: ..."' both occur
        text = _LABEL.sub("", text)
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            text = text[1:-1].strip()
    if not text:
        raise ValueError(f"no summary text in {reply[:200]!r}")
    return text


def _json_items(text: str) -> list[Any] | None:
    """The list a reply's JSON holds, or None when there is no usable JSON."""
    candidates = [text]
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):  # {"keywords": [...]}
            value = next((v for v in value.values() if isinstance(v, list)), None)
        if isinstance(value, str):
            return re.split(r"[,;\n]", value)
        if isinstance(value, list):
            return value
    return None


def _clean_keywords(items: Iterable[Any], max_keywords: int) -> list[str]:
    seen: dict[str, None] = {}  # an ordered set
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            continue  # nested objects/nulls carry no keyword
        phrase = " ".join(_BULLET.sub("", str(item)).lower().split()).strip(_EDGE)
        if phrase:
            seen.setdefault(phrase, None)
        if len(seen) >= max_keywords:
            break
    return list(seen)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# --------------------------------------------------------------------------- cache + batches


@dataclass(frozen=True)
class _Job:
    """One request: its cache key, messages, and the items (same input) it answers."""

    key: str
    messages: list[dict[str, str]]
    item_ids: tuple[str, ...]


def cache_key(task: str, model: str, messages: list[dict[str, str]]) -> str:
    """sha256 of (task, prompt version, model, exact messages sent)."""
    payload = {
        "task": task,
        "prompt_version": PROMPT_VERSIONS[task],
        "model": model,
        "messages": messages,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def cache_path(cache_dir: str | Path, task: str, key: str) -> Path:
    return Path(cache_dir) / task / f"{key}.json"


def _config(cfg: Mapping[str, Any] | LLMConfig) -> LLMConfig:
    conf = cfg if isinstance(cfg, LLMConfig) else LLMConfig.from_params(cfg)
    conf.require_endpoint()
    return conf


def _run(
    conf: LLMConfig,
    task: str,
    inputs: Mapping[str, str],
    build: Callable[[str], list[dict[str, str]]],
    parse: Callable[[str], T],
    valid: Callable[[Any], bool],
    *,
    empty: T,
) -> dict[str, T]:
    """Answers for every item: empty inputs get `empty`, cached keys their cached answer, the
    rest are requested in batches of `batch_size` concurrent calls."""
    results: dict[str, T] = {}
    jobs = _plan(conf, task, inputs, build)
    pending: list[_Job] = []
    for job in jobs:
        cached = _read_cache(conf, task, job.key, valid)
        if cached is None:
            pending.append(job)
        else:
            results.update(dict.fromkeys(job.item_ids, cached))
    n_cached = len(jobs) - len(pending)
    if pending:
        _request_all(conf, task, pending, parse, results, n_cached)
    else:
        print(f"llm {task}: all {n_cached} request(s) cached", flush=True)
    return {item: results.get(item, empty) for item in sorted(inputs)}


def _plan(
    conf: LLMConfig,
    task: str,
    inputs: Mapping[str, str],
    build: Callable[[str], list[dict[str, str]]],
) -> list[_Job]:
    """One job per distinct request, in item-id order of its first item."""
    by_key: dict[str, tuple[list[dict[str, str]], list[str]]] = {}
    for item in sorted(inputs):
        if not inputs[item]:
            continue
        messages = build(inputs[item])
        key = cache_key(task, conf.model or "", messages)
        by_key.setdefault(key, (messages, []))[1].append(item)
    return [_Job(key, msgs, tuple(items)) for key, (msgs, items) in by_key.items()]


def _request_all(
    conf: LLMConfig,
    task: str,
    pending: list[_Job],
    parse: Callable[[str], T],
    results: dict[str, T],
    n_cached: int,
) -> None:
    """Batches of concurrent requests; each answer is cached when it arrives. After a batch
    with failures the first failure is raised (the batch's answers are already cached)."""
    size = conf.batch_size
    n_batches = -(-len(pending) // size)
    done = retries = 0
    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="shelflab-llm") as pool:
        for b in range(n_batches):
            batch = pending[b * size : (b + 1) * size]
            futures = [pool.submit(_answer, conf, task, job, parse) for job in batch]
            errors: list[BaseException] = []
            for job, future in zip(batch, futures, strict=True):
                exc = future.exception()
                if exc is not None:
                    errors.append(exc)
                    continue
                value, n_retries = future.result()
                results.update(dict.fromkeys(job.item_ids, value))
                done += 1
                retries += n_retries
            failed = f", {len(errors)} failed" if errors else ""
            print(
                f"llm {task}: batch {b + 1}/{n_batches}: {done}/{len(pending)} requested, "
                f"{n_cached} cached, {retries} retried{failed}",
                flush=True,
            )
            if errors:
                raise errors[0]


def _answer(conf: LLMConfig, task: str, job: _Job, parse: Callable[[str], T]) -> tuple[T, int]:
    """Request, parse and cache one job; (answer, retries it took)."""
    item_id = job.item_ids[0]
    reply, n_retries = chat(conf, job.messages, item_id=item_id)
    try:
        value = parse(reply)
    except ValueError as exc:
        raise LLMError(conf.url, item_id, f"malformed reply: {exc}") from None
    entry = {
        "task": task,
        "prompt_version": PROMPT_VERSIONS[task],
        "model": conf.model,
        "item_id": item_id,  # the first item asking; others with the same input share it
        "result": value,
        "reply": reply,
    }
    write_json(entry, cache_path(conf.cache_dir, task, job.key))
    return value, n_retries


def _read_cache(conf: LLMConfig, task: str, key: str, valid: Callable[[Any], bool]) -> Any:
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
    value = entry.get("result") if isinstance(entry, dict) else None
    return value if valid(value) else None
