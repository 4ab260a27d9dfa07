"""The rerank prompt and the repair of its answers into a permutation, worked by hand."""

from __future__ import annotations

import pytest

from shelflab.llm.rerank import parse_ranking, rerank_messages


@pytest.mark.parametrize(
    ("reply", "order", "repairs"),
    [
        ('{"ranking": [3, 1, 2, 4]}', [2, 0, 1, 3], {}),
        ('```json\n{"ranking": [2, 1, 4, 3]}\n```', [1, 0, 3, 2], {}),
        ('Here is my ranking: {"ranking": ["4", "[3]", 2.0, 1]} - hope it helps', [3, 2, 1, 0], {}),
        ("[4, 3, 2, 1]", [3, 2, 1, 0], {}),
        ("Best to worst: 2, 4, 1, 3", [1, 3, 0, 2], {}),
        ("[2] > [1] > [4] > [3]", [1, 0, 3, 2], {}),
        ('{"order": [1, 2, 3, 4]}', [0, 1, 2, 3], {}),  # any list in the object will do
        # repairs: 9 and "x" invented, second 2 duplicated, 3 and 4 missing (first-stage order)
        (
            '{"ranking": [2, 9, 2, "x", 1]}',
            [1, 0, 2, 3],
            {"invented": 2, "duplicated": 1, "missing": 2},
        ),
        ('{"ranking": [0, 5]}', [0, 1, 2, 3], {"invented": 2, "missing": 4}),
        ("I cannot rank these products.", [0, 1, 2, 3], {"unparsable": 1}),
        ('{"ranking": []}', [0, 1, 2, 3], {"unparsable": 1}),
        ('{"rationale": "no list"}', [0, 1, 2, 3], {"unparsable": 1}),
        ("", [0, 1, 2, 3], {"unparsable": 1}),
    ],
)
def test_parse_and_repair(reply: str, order: list[int], repairs: dict[str, int]) -> None:
    ranking = parse_ranking(reply, 4)
    assert ranking.order == order
    assert ranking.repairs == repairs
    assert sorted(ranking.order) == [0, 1, 2, 3]  # always a permutation


def test_rationale_is_kept_and_squashed() -> None:
    ranking = parse_ranking('{"ranking": [2, 1], "rationale": " the drill\\n matches "}', 2)
    assert ranking.order == [1, 0] and ranking.rationale == "the drill matches"
    assert parse_ranking("[2, 1]", 2).rationale is None


def test_prompt_numbers_candidates_and_holds_the_query_or_history() -> None:
    system, user = rerank_messages(["Drill", "Saw"], query="cordless drill")
    assert system["role"] == "system" and "search engine" in system["content"]
    text = user["content"]
    assert "Query: cordless drill" in text and "[1] Drill\n[2] Saw" in text
    assert "from 1 to 2" in text and "rationale" not in text
    _, user = rerank_messages(["Mug"], history=["Kettle", "Tea"], rationale=True)
    assert "History:\n- Kettle\n- Tea\n\nCandidates:\n[1] Mug" in user["content"]
    assert '"rationale"' in user["content"]
