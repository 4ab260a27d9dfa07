"""Optional LLM backend for item text: review keywords and description summaries.

The default review keywords come from the offline TF-IDF extractor; this module is the
alternative that asks any OpenAI-compatible endpoint (see `shelflab.llm.client` for the config,
the env overrides and the retry policy). Nothing in the pipeline requires it.

Requests go through `shelflab.llm.batch`: every answer is cached on disk as it arrives, keyed by
(task, prompt version, model, exact messages sent), so a run that fails midway resumes on rerun
and only asks for the items still missing; items whose input is identical share one request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from shelflab.llm.batch import message_pair, plan_jobs, run_jobs
from shelflab.llm.client import LLMConfig
from shelflab.llm.replies import json_values, strip_fences

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
        lambda text: message_pair(
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
        lambda text: message_pair(_SUMMARY_SYSTEM, _SUMMARY_USER.format(text=text)),
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


# --------------------------------------------------------------------------- reply parsing

_LABEL = re.compile(r"^\s*(keywords?|key phrases|summary)\s*:\s*", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•]+\s*|\d+[.)]\s+)")  # "- x", "2. x"; not "3.5 inch"
_EDGE = " \t\"'`.,;:[]{}()"


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
    for value in json_values(text):
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


# --------------------------------------------------------------------------- batches


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
    """Answers for every item: empty inputs get `empty`, the rest go through the cached,
    resumable batches of `shelflab.llm.batch` (items with the same input share one request)."""
    messages = {item: build(inputs[item]) for item in sorted(inputs) if inputs[item]}
    jobs = plan_jobs(conf, task, PROMPT_VERSIONS[task], messages)
    answers, _, _ = run_jobs(conf, task, PROMPT_VERSIONS[task], jobs, parse, valid)
    results = {item: answers[job.key].value for job in jobs for item in job.ids}
    return {item: results.get(item, empty) for item in sorted(inputs)}
