import math

import polars as pl
import pytest

from shelflab.contract import add_rank, validate_qrels, validate_queries, validate_run
from shelflab.errors import InputError


def run(rows):
    return pl.DataFrame(rows, schema=["query_id", "item_id", "score"], orient="row")


def test_add_rank_breaks_ties_like_trec_eval():
    ranked = add_rank(run([("q", "a", 1.0), ("q", "b", 1.0), ("q", "c", 2.0)]))
    assert ranked["item_id"].to_list() == ["c", "b", "a"]
    assert ranked["rank"].to_list() == [1, 2, 3]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_run_rejects_non_finite_scores_with_row(bad):
    with pytest.raises(InputError) as err:
        validate_run(run([("q", "a", 1.0), ("q", "b", bad)]), "my.run")
    assert "my.run" in str(err.value) and "non-finite score" in str(err.value)


def test_run_rejects_duplicate_pairs():
    with pytest.raises(InputError, match=r"duplicate \(query_id, item_id\).*'q', 'a'"):
        validate_run(run([("q", "a", 1.0), ("q", "a", 0.5)]), "r")


def test_run_missing_column():
    with pytest.raises(InputError, match=r"missing column.*score"):
        validate_run(pl.DataFrame({"query_id": ["q"], "item_id": ["a"]}), "r")


def test_run_non_numeric_score_names_row():
    df = pl.DataFrame(
        {"query_id": ["q", "q"], "item_id": ["a", "b"], "score": ["1", "x"], "rank": [1, 2]}
    )
    with pytest.raises(InputError) as err:
        validate_run(df, "r.tsv")
    assert "r.tsv, row 2" in str(err.value) and "'x'" in str(err.value)


def test_qrels_conflicting_grades_error_and_exact_duplicates_collapse():
    same = pl.DataFrame({"query_id": ["q", "q"], "item_id": ["a", "a"], "grade": [1.0, 1.0]})
    assert validate_qrels(same, "q").height == 1
    conflict = same.with_columns(pl.Series("grade", [1.0, 2.0]))
    with pytest.raises(InputError, match=r"conflicting grades \[1.0, 2.0\]"):
        validate_qrels(conflict, "qrels.txt")


def test_queries_empty_text_and_duplicates():
    with pytest.raises(InputError, match="row 2: empty query text"):
        validate_queries(pl.DataFrame({"query_id": ["1", "2"], "text": ["drill", "  "]}), "q")
    with pytest.raises(InputError, match="duplicate query_id '1'"):
        validate_queries(pl.DataFrame({"query_id": ["1", "1"], "text": ["a", "b"]}), "q")
