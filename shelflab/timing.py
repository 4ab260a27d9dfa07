"""Progress lines and stage clocks for logs that DVC captures: no TTY, so no bars.

`Progress` prints `embed catalog: 1,200/54,667 titles (2.2%), 310 titles/s, ETA 2m51s` at most
every SHELFLAB_PROGRESS_EVERY seconds (10 by default), and one closing line with the whole
loop's rate. Each finished loop is remembered, so that a stage's timings can name its main loop.
`run_timed` runs a stage's entry point, then prints `<stage>: wall 12.3 s, CPU 20.1 s, peak RSS
812 MiB` and writes the same figures as a small JSON file (a DVC metrics file in the pipelines).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
EVERY_ENV = "SHELFLAB_PROGRESS_EVERY"
DEFAULT_EVERY = 10.0
CLOSE_AFTER = 1.0  # the stage's line names its main loop when it ran at least this long


@dataclass(frozen=True)
class LoopTime:
    label: str
    unit: str
    items: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


FINISHED: list[LoopTime] = []  # the loops this process finished, in order
DEVICES: dict[str, str] = {}  # what ran where ("sasrec" -> "cuda:0"), for the stage's line


def every_seconds() -> float:
    try:
        value = float(os.environ.get(EVERY_ENV, DEFAULT_EVERY))
    except ValueError:
        return DEFAULT_EVERY
    return value if value >= 0 else DEFAULT_EVERY


def duration(seconds: float) -> str:
    """12.3s, 2m51s, 1h02m: short enough for a log line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def rate(per_second: float) -> str:
    if per_second >= 100:
        return f"{per_second:,.0f}"
    return f"{per_second:.3g}"


class Progress:
    """Counts items of one loop and prints a line every `every` seconds: done/total, percent,
    rate and ETA (no total: done and rate). `update(n, **fields)` may carry the latest values
    of e.g. a loss, shown after the rate. Disabled, it prints nothing but still times the loop.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "items",
        *,
        enabled: bool = True,
        every: float | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.enabled = enabled
        self.every = every_seconds() if every is None else every
        self.stream = stream
        self.done = 0
        self.fields: dict[str, Any] = {}
        self.lines = 0
        self.start = self.last = time.perf_counter()
        self.closed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def update(self, n: int = 1, **fields: Any) -> None:
        self.done += n
        self.fields.update(fields)
        now = time.perf_counter()
        finished = self.total is not None and self.done >= self.total  # close() says it
        if self.enabled and now - self.last >= self.every and not finished:
            self.last = now
            self._print(self.line())

    def line(self) -> str:
        elapsed = max(self.elapsed, 1e-9)
        per_s = self.done / elapsed
        if self.total:
            left = max(0, self.total - self.done)
            eta = duration(left / per_s) if per_s > 0 else "?"
            head = (
                f"{self.done:,}/{self.total:,} {self.unit} ({100 * self.done / self.total:.1f}%), "
                f"{rate(per_s)} {self.unit}/s, ETA {eta}"
            )
        else:
            head = f"{self.done:,} {self.unit}, {rate(per_s)} {self.unit}/s, {duration(elapsed)}"
        return f"{self.label}: {head}{self._fields()}"

    def close(self, note: str = "") -> LoopTime:
        """Prints the closing line (a loop that lasted at least one interval, or printed a
        line: short loops, e.g. inside tuning trials, stay quiet) and remembers its time."""
        loop = LoopTime(self.label, self.unit, self.done, self.elapsed)
        if self.closed:
            return loop
        self.closed = True
        FINISHED.append(loop)
        if self.enabled and (self.lines or loop.seconds >= self.every):
            self._print(
                f"{self.label}: {loop.items:,} {self.unit} in {duration(loop.seconds)} "
                f"({rate(loop.per_second)} {self.unit}/s){self._fields()}"
                + (f"; {note}" if note else "")
            )
        return loop

    def _fields(self) -> str:
        shown = []
        for key, value in self.fields.items():
            shown.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
        return f", {', '.join(shown)}" if shown else ""

    def _print(self, text: str) -> None:
        self.lines += 1
        print(text, file=self.stream or sys.stderr, flush=True)


def track(
    items: Iterable[T],
    label: str,
    total: int | None = None,
    unit: str = "items",
    *,
    enabled: bool = True,
) -> Iterator[T]:
    """Yields `items`, counting one per item (a generator form of Progress)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    progress = Progress(label, total, unit, enabled=enabled)
    for item in items:
        yield item
        progress.update()
    progress.close()


def batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive slices of `size` over range(n)."""
    for start in range(0, n, max(1, size)):
        yield start, min(n, start + size)


@dataclass(frozen=True)
class StageTime:
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    main_loop: LoopTime | None

    def record(self) -> dict[str, Any]:
        """Flat numbers (and the main loop's name), so `dvc metrics show` makes one table."""
        out: dict[str, Any] = {
            "wall_s": round(self.wall_s, 2),
            "cpu_s": round(self.cpu_s, 2),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
        }
        if self.main_loop is not None:
            loop = self.main_loop
            out["main_loop"] = f"{loop.label} ({loop.unit})"
            out["main_loop_items"] = loop.items
            out["main_loop_s"] = round(loop.seconds, 2)
            out["main_loop_per_s"] = round(loop.per_second, 2)
        if DEVICES:
            out["device"] = ", ".join(sorted(set(DEVICES.values())))
        return out

    def line(self, label: str) -> str:
        text = (
            f"{label}: wall {self.wall_s:.1f} s, CPU {self.cpu_s:.1f} s, "
            f"peak RSS {self.peak_rss_mib:,.0f} MiB"
        )
        if self.main_loop is not None and self.main_loop.seconds >= CLOSE_AFTER:
            loop = self.main_loop
            text += (
                f"; main loop {loop.label}: {loop.items:,} {loop.unit} in "
                f"{duration(loop.seconds)} ({rate(loop.per_second)}/s)"
            )
        if DEVICES:
            text += f"; device {', '.join(sorted(set(DEVICES.values())))}"
        return text


def cpu_seconds() -> float:
    """User + system time of this process and its waited-for children (tuning workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def peak_rss_mib() -> float:
    """The larger of this process's and its largest child's peak resident set (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # macOS reports bytes
    return max(own, child) / scale


def run_timed(label: str, out: Path | None, main: Callable[..., T], *args: Any) -> T:
    """Runs `main(*args)`; on success prints the stage's wall / CPU / peak RSS line and writes
    the figures to `out` as JSON. Stage output is line-buffered so that it interleaves with the
    progress lines in DVC's log."""
    from shelflab.atomic import write_json

    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)
    FINISHED.clear()
    DEVICES.clear()
    start, cpu = time.perf_counter(), cpu_seconds()
    result = main(*args)
    loops = [loop for loop in FINISHED if loop.items]
    stage = StageTime(
        wall_s=time.perf_counter() - start,
        cpu_s=cpu_seconds() - cpu,
        peak_rss_mib=peak_rss_mib(),
        main_loop=max(loops, key=lambda loop: loop.seconds) if loops else None,
    )
    if out is not None:
        write_json(stage.record(), out)
    print(stage.line(label), flush=True)
    return result
