"""Global time split: hand-worked cuts, ties stay together, no later event in an earlier split."""

import polars as pl
import pytest

from shelflab.errors import ConfigError, InputError
from shelflab.protocols.time_split import time_cuts, time_split


def events(times: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"query_id": [f"q{i}" for i in range(len(times))], "timestamp": times})


def test_ten_distinct_times_split_8_1_1():
    # sorted times 10..100: the valid period starts at rank floor(0.8 * 10) = 8 -> 90, test at 9
    df = events([100, 10, 20, 30, 40, 50, 60, 70, 80, 90])
    result = time_split(df, (0.8, 0.1, 0.1))
    assert result.cuts == [90, 100]
    got = dict(result.splits.iter_rows())
    assert got["q0"] == "test" and got["q9"] == "valid"
    assert sum(v == "train" for v in got.values()) == 8
    assert result.splits["query_id"].to_list() == df["query_id"].to_list()  # input order kept


def test_ties_never_straddle_a_cut():
    # the 80% rank falls inside a run of equal times: the whole run goes to the later period
    df = events([1, 2, 3, 4, 5, 5, 5, 5, 9, 10])
    result = time_split(df, (0.5, 0.3, 0.2))
    assert result.cuts == [5, 9]
    by_time = result.splits.with_columns(t=df["timestamp"])
    assert by_time.filter(pl.col("t") == 5)["split"].unique().to_list() == ["valid"]
    for earlier, later in [("train", "valid"), ("valid", "test")]:
        a = by_time.filter(pl.col("split") == earlier)["t"].max()
        b = by_time.filter(pl.col("split") == later)["t"].min()
        assert a < b


def test_summary_has_dates_and_counts():
    s = time_split(events([0, 86400, 2 * 86400, 3 * 86400]), (0.5, 0.25, 0.25)).summary()
    assert s["events_per_split"] == {"train": 2, "valid": 1, "test": 1}
    assert [c["date"] for c in s["cuts"]] == ["1970-01-03", "1970-01-04"]


def test_too_few_distinct_times_is_a_config_error():
    with pytest.raises(ConfigError, match=r"valid.*came out empty"):
        time_split(events([7, 7, 7, 7, 8]), (0.8, 0.1, 0.1))


def test_time_cuts_direct():
    assert time_cuts(pl.Series([3, 1, 2, 4]), [0.5, 0.5]) == [3]


@pytest.mark.parametrize(
    ("df", "match"),
    [
        (pl.DataFrame({"query_id": ["a"]}), "missing column 'timestamp'"),
        (events([]), "no events"),
        (pl.DataFrame({"query_id": ["a", "b"], "timestamp": [1, None]}), "row 2"),
    ],
)
def test_bad_input(df, match):
    with pytest.raises(InputError, match=match):
        time_split(df, (0.8, 0.1, 0.1))
