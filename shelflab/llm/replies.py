"""Helpers for reading model replies, which wrap their answer in fences and prose."""

from __future__ import annotations

import re

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
