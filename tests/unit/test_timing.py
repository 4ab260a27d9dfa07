"""Progress lines and stage clocks (shelflab/timing.py)."""

import io
import json
import time

import pytest

from shelflab import timing
from shelflab.timing import Progress, duration, run_timed, track

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0s"), (12.34, "12.3s"), (59.96, "60.0s"), (171, "2m51s"), (3725, "1h02m")],
)
def test_duration_is_short_and_exact(seconds, text):
    assert duration(seconds) == text


def test_progress_line_has_count_percent_rate_and_eta(monkeypatch):
    clock = iter([100.0, 102.0, 102.0])  # start, the update, line()
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    p = Progress("embed catalog", 1000, "titles", every=1.0, stream=out)
    p.update(250, loss=0.123456)
    # 250 titles in 2 s: 125/s, 750 left -> 6 s
    assert out.getvalue() == (
        "embed catalog: 250/1,000 titles (25.0%), 125 titles/s, ETA 6.0s, loss 0.1235\n"
    )


def test_progress_prints_at_most_every_interval():
    out = io.StringIO()
    p = Progress("loop", 20_000, every=3600, stream=out)
    for _ in range(10_000):
        p.update()
    assert out.getvalue() == ""  # nothing before the first interval has passed
    p.every = 0
    p.update(0)
    assert out.getvalue().count("\n") == 1


def test_the_last_update_leaves_the_line_to_close():
    out = io.StringIO()
    p = Progress("loop", 4, "steps", every=0, stream=out)
    p.update(3)
    p.update(1)  # 4/4: close() prints the one closing line with the total time
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "3/4 steps" in lines[0] and lines[1].startswith("loop: 4 steps in")


def test_progress_without_total_shows_count_and_rate():
    out = io.StringIO()
    p = Progress("read", None, "rows", every=0, stream=out)
    p.update(5)
    line = out.getvalue()
    assert line.startswith("read: 5 rows, ") and "rows/s" in line and "ETA" not in line


def test_close_remembers_the_loop_and_prints_only_after_an_interval():
    timing.FINISHED.clear()
    quick = io.StringIO()
    with Progress("quick", 3, every=2.0, stream=quick) as p:
        p.update(3)
    assert quick.getvalue() == ""  # a loop shorter than the interval says nothing
    assert timing.FINISHED[-1].label == "quick" and timing.FINISHED[-1].items == 3

    slow = io.StringIO()
    p = Progress("slow", 2, "steps", every=2.0, stream=slow)
    p.start -= 5  # it has run for 5 s
    p.update(2)
    loop = p.close(note="early stop")
    assert loop.items == 2 and loop.seconds >= 5
    assert slow.getvalue().startswith("slow: 2 steps in 5.0s (0.4 steps/s)")
    assert slow.getvalue().rstrip().endswith("; early stop")
    p.close()  # closing twice records the loop once
    assert [f.label for f in timing.FINISHED].count("slow") == 1


def test_disabled_progress_is_silent_but_timed():
    timing.FINISHED.clear()
    out = io.StringIO()
    p = Progress("silent", 5, enabled=False, every=0, stream=out)
    p.start -= 2
    p.update(5)
    p.close()
    assert out.getvalue() == ""
    assert timing.FINISHED[-1].label == "silent"


def test_track_counts_every_item():
    timing.FINISHED.clear()
    assert list(track(range(7), "items")) == list(range(7))
    assert timing.FINISHED[-1].items == 7


def test_run_timed_writes_figures_and_names_the_main_loop(tmp_path, capsys):
    def stage(n: int) -> int:
        with Progress("short loop", 1, enabled=False) as p:
            p.update(1)
        with Progress("main loop", n, "queries", enabled=False) as p:
            time.sleep(0.05)
            p.update(n)
        start = time.process_time()
        while time.process_time() - start < 0.1:  # 0.1 s of CPU: os.times() ticks are 10 ms
            sum(i * i for i in range(10_000))
        return 7

    out = tmp_path / "metrics" / "timings" / "evaluate@bm25.json"
    assert run_timed("evaluate@bm25", out, stage, 40) == 7
    record = json.loads(out.read_text())
    assert record["wall_s"] >= 0.05
    assert 0 < record["cpu_s"] <= record["wall_s"] + 1
    assert record["peak_rss_mib"] > 10  # a Python process holds more than 10 MiB
    assert record["main_loop"] == "main loop (queries)"
    assert record["main_loop_items"] == 40
    assert record["main_loop_per_s"] == pytest.approx(40 / record["main_loop_s"], rel=0.05)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("evaluate@bm25: wall ") and ", CPU " in line and "peak RSS" in line


def test_run_timed_writes_nothing_when_the_stage_fails(tmp_path):
    def broken() -> None:
        raise ValueError("boom")

    out = tmp_path / "t.json"
    with pytest.raises(ValueError, match="boom"):
        run_timed("x", out, broken)
    assert not out.exists()


def test_run_timed_records_the_device(tmp_path):
    from shelflab.models.device import resolve_device

    out = tmp_path / "t.json"
    run_timed("train@x", out, lambda: resolve_device("cpu"))
    assert json.loads(out.read_text())["device"] == "cpu"
