"""The listwise rerank prompt and the robust reading of its answer.

Candidates are numbered 1..n in the prompt (short numbers, not raw item ids, which models copy
badly) and the model is asked for `{"ranking": [3, 1, 2, ...], "rationale": "..."}`. Replies are
read leniently (fenced JSON, JSON in prose, a bare list, numbers separated by commas) and then
repaired into a permutation: invented numbers and repeats are dropped, missing candidates are
appended in the first stage's order, and a reply with no usable ranking keeps the first stage's
order. Each repair is counted, so a model that answers badly shows in the diagnostics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shelflab.llm.batch import Messages, message_pair
from shelflab.llm.replies import json_values, strip_fences

TASK = "rerank"
PROMPT_VERSION = "rerank-v1"  # bump when the prompt or the parsing changes: old entries miss
REPAIRS = ("missing", "duplicated", "invented", "unparsable")

_SYSTEM = (
    "You rank products for an e-commerce {what}. You answer with a JSON object and nothing else."
)
_SEARCH = "Rank the candidate products by how well they match the shopper's search query."
_HISTORY = (
    "Rank the candidate products by how likely the shopper is to want one next, given the "
    "products they interacted with (oldest first)."
)
_ANSWER = (
    'Reply with JSON only: {{"ranking": [candidate numbers, best first]{why}}}. '
    "Include every candidate number from 1 to {n} exactly once."
)
_WHY = ', "rationale": "one short sentence on why the first ones come first"'
_NUMBER_RUN = re.compile(r"\[?\d+\]?(?:\s*(?:,|;|>|\s)\s*\[?\d+\]?)+")


@dataclass(frozen=True)
class Ranking:
    """A repaired ranking: `order` is a permutation of range(n) (0-based candidate positions),
    `repairs` counts what had to be fixed (keys: REPAIRS)."""

    order: list[int]
    rationale: str | None = None
    repairs: dict[str, int] = field(default_factory=dict)


def rerank_messages(
    candidates: Sequence[str],
    *,
    query: str | None = None,
    history: Sequence[str] | None = None,
    rationale: bool = False,
) -> Messages:
    """The chat messages asking to rank `candidates` (titles) for a search `query` or, for
    next-item, after the user's `history` (titles, oldest first)."""
    if history is not None:
        system = _SYSTEM.format(what="recommender")
        lines = [_HISTORY, "History:", *(f"- {title}" for title in history)]
    else:
        system = _SYSTEM.format(what="search engine")
        lines = [_SEARCH, f"Query: {query or ''}"]
    listing = "\n".join(f"[{i}] {title}" for i, title in enumerate(candidates, start=1))
    answer = _ANSWER.format(why=_WHY if rationale else "", n=len(candidates))
    return message_pair(system, "\n".join(lines) + f"\n\nCandidates:\n{listing}\n\n{answer}")


def parse_ranking(reply: str, n: int) -> Ranking:
    """The permutation of n candidates a reply gives, repaired (see the module docstring)."""
    raw, rationale = _extract(strip_fences(reply))
    if not raw:
        return Ranking(list(range(n)), rationale, {"unparsable": 1})
    repairs = dict.fromkeys(REPAIRS, 0)
    order: list[int] = []
    seen: set[int] = set()
    for value in raw:
        number = _as_number(value)
        if number is None or not 1 <= number <= n:
            repairs["invented"] += 1
        elif number - 1 in seen:
            repairs["duplicated"] += 1
        else:
            order.append(number - 1)
            seen.add(number - 1)
    missing = [i for i in range(n) if i not in seen]
    repairs["missing"] = len(missing)
    return Ranking(order + missing, rationale, {k: v for k, v in repairs.items() if v})


def _extract(text: str) -> tuple[list[Any] | None, str | None]:
    """(the ranking list, the rationale) a reply holds: JSON first (whole, or the outermost
    {...} or [...] in prose), then a run of numbers such as "3, 1, 2"."""
    for value in json_values(text, "{}[]"):
        if isinstance(value, list):
            return value, None
        if isinstance(value, dict):
            ranking = value.get("ranking")
            if not isinstance(ranking, list):
                ranking = next((v for v in value.values() if isinstance(v, list)), None)
            why = value.get("rationale")
            return ranking, " ".join(why.split()) if isinstance(why, str) else None
    runs = _NUMBER_RUN.findall(text)
    if runs:
        return re.findall(r"\d+", max(runs, key=len)), None
    return None, None


def _as_number(value: Any) -> int | None:
    """A candidate number from 3, 3.0, "3" or "[3]"; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        digits = value.strip().strip("[]#").strip()
        return int(digits) if digits.isdigit() else None
    return None
