import polars as pl
import pytest

from shelflab.atomic import atomic_dir, atomic_path, write_json
from shelflab.quarantine import Quarantine


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    write_json({"v": 1}, target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text().strip().endswith("}") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_dir_replaces_whole_directory_only_on_success(tmp_path):
    target = tmp_path / "index"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(ValueError), atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("partial")
        raise ValueError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("second")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_quarantine_keeps_rows_with_reason_and_counts(tmp_path):
    q = Quarantine()
    q.add(
        pl.DataFrame({"row": [3, 7], "term": ["", " "]}),
        source="train.csv",
        reason="empty search term",
    )
    q.add(pl.DataFrame({"term": ["x"]}), source="train.csv", reason="unknown product")
    counts = q.write(tmp_path / "quarantine.parquet")
    assert counts == {"empty search term": 2, "unknown product": 1}
    table = pl.read_parquet(tmp_path / "quarantine.parquet")
    assert table["row"].to_list() == [3, 7, 1]
    assert table["record"][0] == '{"term":""}'


def test_empty_quarantine_still_written(tmp_path):
    assert Quarantine().write(tmp_path / "q.parquet") == {}
    assert pl.read_parquet(tmp_path / "q.parquet").height == 0
