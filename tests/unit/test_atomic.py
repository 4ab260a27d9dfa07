import os
import re

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


def test_outputs_follow_the_umask_not_the_temp_files_0600(tmp_path):
    import os
    import stat

    old = os.umask(0o027)
    try:
        write_json({"v": 1}, tmp_path / "out.json")
        with atomic_dir(tmp_path / "index") as tmp:
            (tmp / "a.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "index").stat().st_mode) == 0o750


def test_a_killed_writers_temp_files_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    # a writer killed mid-write: its temp file and temp directory stay behind
    code = (
        "import os, sys\n"
        "from shelflab.atomic import atomic_dir, atomic_path\n"
        "d = sys.argv[1]\n"
        "with atomic_path(d + '/out.json') as t, atomic_dir(d + '/index') as t2:\n"
        "    t.write_text('half'); (t2 / 'a').write_text('half'); os._exit(9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert proc.returncode == 9
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all(n.startswith((".out.json.", ".index.")) for n in left)
    # a live writer's temp file (this process's pid) and another program's file stay
    mine = tmp_path / f".out.json.{os.getpid()}.abc.json"
    mine.write_text("busy")
    other = tmp_path / ".out.json.swp"
    other.write_text("an editor's")
    write_json({"v": 2}, tmp_path / "out.json")
    with atomic_dir(tmp_path / "index") as tmp:
        (tmp / "b").write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".out.json.swp", mine.name, "index", "out.json"]
    )


def test_a_writer_killed_between_its_renames_gets_the_old_directory_back(tmp_path):
    from shelflab.atomic import remove_stale_temps

    dead = 2**22 + 12345  # above the default pid_max: no such process
    old = tmp_path / f".index.old.{dead}"
    old.mkdir()
    (old / "a.txt").write_text("previous output")
    assert remove_stale_temps(tmp_path / "index") == 0
    assert (tmp_path / "index" / "a.txt").read_text() == "previous output"


@pytest.mark.parametrize(
    ("make", "writer", "message"),
    [
        (lambda p: p.mkdir(), "file", "out: is a directory (expected a file path for the output)"),
        (lambda p: p.write_text("mine"), "dir", "out: is a file (expected a directory path"),
        (lambda p: None, "file-under-file", "a parent of this path is a file"),
    ],
)
def test_bad_output_paths_are_one_line_errors(tmp_path, make, writer, message):
    from shelflab.errors import InputError

    target = tmp_path / "out"
    make(target)
    if writer == "file-under-file":
        (tmp_path / "blocker").write_text("a file")
        target = tmp_path / "blocker" / "out"
    with pytest.raises(InputError, match=re.escape(message)):
        if writer == "dir":
            with atomic_dir(target) as tmp:
                (tmp / "x").write_text("x")
        else:
            write_json({"v": 1}, target)
    if writer == "dir":
        assert target.read_text() == "mine"  # a file is never replaced by a directory
