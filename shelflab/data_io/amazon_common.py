"""Shared plumbing of the Amazon loaders (see `shelflab.data_io.amazon` for the formats).

Reading JSON lines (plain or gzipped, detected from the magic bytes), holding rejected lines
back until a file is known to be usable, detecting the format from the keys of the first
object, coercing field values, and the quarantine reasons the loaders report.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.errors import ConfigError, InputError
from shelflab.quarantine import Quarantine

try:  # a fast path only: any line orjson rejects is re-read by json (same semantics)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson comes with the pinned dependencies
    _orjson = None

# Quarantine reasons (stable strings: the pipeline reports counts per reason).
R_MALFORMED = "malformed JSON"
R_MISSING = "missing field"
R_BAD_VALUE = "bad value"
R_EMPTY_TEXT = "empty text"
R_DUP_REVIEW = "duplicate review"
R_UNKNOWN_ITEM = "unknown item"
R_DUP_ITEM = "duplicate item"

RAW_LINE_COL = "_line"  # internal column: the raw line, for quarantining a kept row later
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_TIMESTAMP = 2**53  # anything larger is corrupt (and would overflow Int64 in ms)


class BadValue(ValueError):
    """A field is present but unusable (-> "bad value")."""


# ---------------------------------------------------------------------------- reading lines


@dataclass
class Rejects:
    """Rejected lines per reason, held back until the file is known to be usable, so that an
    unusable file raises without filling the quarantine."""

    by_reason: dict[str, tuple[list[int], list[str]]] = field(default_factory=dict)
    blank_lines: int = 0  # hold no data; counted so the stats account for every line

    def add(self, reason: str, row: int, line: str) -> None:
        rows, lines = self.by_reason.setdefault(reason, ([], []))
        rows.append(row)
        lines.append(line)

    def counts(self) -> dict[str, int]:
        return {reason: len(rows) for reason, (rows, _) in sorted(self.by_reason.items())}

    def flush(self, quarantine: Quarantine, source: str) -> None:
        for reason, (rows, lines) in self.by_reason.items():
            quarantine.add(_line_frame(rows, lines), source=source, reason=reason)


def _line_frame(rows: list[int], lines: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"row": pl.Series(rows, dtype=pl.Int64), "line": pl.Series(lines, dtype=pl.String)}
    )


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes without the line end) for every line, blank ones included;
    streamed, so a multi-GB metadata file is never held in memory as a whole."""
    opener = gzip.open if _is_gzip(path) else open
    n = 0
    try:
        with opener(path, "rb") as fh:
            for n, line in enumerate(fh, 1):
                if n == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]  # a UTF-8 byte-order mark is not part of the JSON
                yield n, line.rstrip(b"\r\n")
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(
            f"unreadable data after line {n} ({exc})", path=path, expected="a readable file"
        ) from exc


def first_line(p: Path) -> str:
    """The first non-blank line (decoded leniently), "" for a blank file."""
    for _, raw in raw_lines(p):
        if raw.strip():
            return raw.decode("utf-8", errors="replace")
    return ""


def _parse_json(raw: bytes) -> Any:
    """The JSON value of one line; raises ValueError when it is not JSON or not UTF-8."""
    if _orjson is not None:
        try:
            return _orjson.loads(raw)
        except _orjson.JSONDecodeError:
            pass  # json.loads accepts a few things orjson does not (NaN, big ints, surrogates)
    return json.loads(raw.decode("utf-8"))


def json_objects(path: Path, rejects: Rejects) -> Iterator[tuple[int, str, dict]]:
    """(line number, raw line, object) for each line holding a JSON object; other non-blank
    lines go to `rejects` as malformed JSON. Blank lines are skipped."""
    for n, raw in raw_lines(path):
        if not raw.strip():
            rejects.blank_lines += 1
            continue
        try:
            obj = _parse_json(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            obj = None
        line = raw.decode("utf-8", errors="replace")
        if isinstance(obj, dict):
            yield n, line, obj
        else:
            rejects.add(R_MALFORMED, n, line)


def sniff_format(
    obj: dict, markers: dict[str, set[str]], path: Path, row: int, expected: str
) -> str:
    """The format whose marker keys `obj` shares most of; raises when none or a tie."""
    scores = {fmt: len(keys & obj.keys()) for fmt, keys in markers.items()}
    best = max(scores.values())
    winners = [fmt for fmt, score in scores.items() if score == best]
    if best == 0 or len(winners) > 1:
        keys = ", ".join(sorted(obj)[:12]) or "none"
        raise InputError(
            f"cannot detect the format from the keys of line {row} ({keys})",
            path=path,
            row=row,
            expected=expected,
        )
    return winners[0]


def check_format(fmt: str, formats: tuple[str, ...], what: str) -> None:
    """Raises ConfigError unless `fmt` is "auto" or one of `formats`."""
    if fmt != "auto" and fmt not in formats:
        raise ConfigError(
            f"unknown {what} format {fmt!r} (expected auto or one of: {', '.join(formats)})"
        )


def require_usable(
    path: Path, n_read: int, n_kept: int, rejects: Rejects, what: str, expected: str
) -> None:
    """Raises InputError for a file with no line read or no usable record kept."""
    if n_read == 0:
        raise InputError("file is empty", path=path, expected=expected)
    if n_kept == 0:
        counts = ", ".join(f"{r}: {c}" for r, c in rejects.counts().items())
        first = min(min(rows) for rows, _ in rejects.by_reason.values())
        raise InputError(
            f"no usable {what} in {n_read} line(s) ({counts}; first bad line {first})",
            path=path,
            expected=expected,
        )


def finish_table(
    path: Path,
    fmt: str,
    rows: list[tuple],
    rejects: Rejects,
    quarantine: Quarantine,
    what: str,
    expected: str,
    schema: dict[str, Any],
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The kept rows as a frame (schema + RAW_LINE_COL) and the loading stats, after checking
    the file was usable and handing the rejects to the quarantine."""
    n_read = len(rows) + sum(rejects.counts().values())
    require_usable(path, n_read, len(rows), rejects, what, expected)
    rejects.flush(quarantine, str(path))
    frame = pl.DataFrame(rows, schema={**schema, RAW_LINE_COL: pl.String}, orient="row")
    stats = {
        "path": str(path),
        "format": fmt,
        "read": n_read,
        "kept": frame.height,
        "quarantined": rejects.counts(),
        "blank_lines": rejects.blank_lines,
    }
    return frame, stats


def public_table(
    table: tuple[pl.DataFrame, dict[str, Any]], stats: dict[str, Any] | None
) -> pl.DataFrame:
    """What a public loader returns: the frame without RAW_LINE_COL; `stats`, when given, gets
    the loading stats."""
    frame, info = table
    if stats is not None:
        stats.update(info)
    return frame.drop(RAW_LINE_COL)


# ---------------------------------------------------------------------------- field values


def is_present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def as_id(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BadValue(f"id {value!r}")


def as_number(value: Any) -> float:
    if isinstance(value, bool):
        raise BadValue(f"number {value!r}")
    if isinstance(value, int | float):
        try:
            x = float(value)
        except OverflowError:  # an int too big for a float
            raise BadValue(f"number {value!r}") from None
    elif isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            raise BadValue(f"number {value!r}") from None
    else:
        raise BadValue(f"number {value!r}")
    if not math.isfinite(x):
        raise BadValue(f"number {value!r}")
    return x


def as_timestamp(value: Any, ms: bool) -> int:
    exact = isinstance(value, int) and not isinstance(value, bool)
    t = value if exact else int(as_number(value))  # exact ints: no float rounding of ms stamps
    if not 0 <= t < _MAX_TIMESTAMP:
        raise BadValue(f"timestamp {value!r}")
    return t // 1000 if ms else t


def as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def as_count(value: Any) -> int:
    """A vote count: 12, "12", "1,234" (2018 writes thousands with commas); missing -> 0."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str):
        digits = value.strip().replace(",", "")
        if digits.isdigit():
            return int(digits)
        if not digits:
            return 0
    raise BadValue(f"vote {value!r}")


def as_image_count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, list):
        return len(value)
    if isinstance(value, str):  # a single URL
        return 1 if value.strip() else 0
    raise BadValue(f"images {value!r}")


def as_flag(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BadValue(f"verified {value!r}")
