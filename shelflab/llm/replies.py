"""Helpers for reading model replies, which wrap their answer in fences and prose."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_FENCED = re.compile(r"```[\w+-]*[ \t]*\n?(.*?)```", re.S)


def strip_fences(reply: str) -> str:
    """The body of the first ``` fenced block (an unclosed one too), else the reply stripped."""
    text = reply.strip()
    match = _FENCED.search(text)
    if match:
        return match.group(1).strip()
    if text.startswith("```"):  # cut off before the closing fence
        return text.split("\n", 1)[1].strip() if "\n" in text else ""
    return text


def json_values(text: str, brackets: str = "[]") -> Iterator[Any]:
    """The JSON values a reply may hold, most likely first: the whole text, then the outermost
    span of each bracket pair of `brackets` ("{}[]": an object, then an array) in prose."""
    spans = [text]
    for left, right in zip(brackets[::2], brackets[1::2], strict=True):
        start, end = text.find(left), text.rfind(right)
        if 0 <= start < end:
            spans.append(text[start : end + 1])
    for span in spans:
        try:
            yield json.loads(span)
        except ValueError:
            continue
