"""Shared reading helpers for the dataset loaders: open plain or gzip files, decode them
(UTF-8 BOM / UTF-8 / a fallback such as latin-1), check the header and delimiter, and parse
with Python's quote-aware `csv` module into an all-string polars table.

Row numbers follow `InputError`: 1-based, the header is row 1, and a record's row is the
physical line it starts on (the same as the record number for files without blank lines or
quoted line breaks, such as all the real data files). Every parsed table carries them in a
column `row` (Int64), which `Quarantine.add` picks up, so a quarantined row can be found again
in the original file.
A record whose field count differs from the header's is never dropped silently: it is returned
separately (see `CsvTable.ragged`) for the caller to quarantine.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from shelflab.errors import InputError
from shelflab.quarantine import Quarantine

ROW = "row"
MALFORMED = "malformed record (field count differs from the header's)"
_GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"

# Product descriptions can be long; the csv module's default field limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class CsvTable:
    """A parsed delimited file: `frame` holds the well-formed records (all columns String, plus
    `row`); `ragged` the records whose field count differs from the header's (columns `row`,
    `fields`, `line`), for the caller to quarantine; `encoding` the encoding used to decode."""

    frame: pl.DataFrame
    ragged: pl.DataFrame
    encoding: str
    path: str


def require_file(path: str | Path, what: str) -> Path:
    """Return `path` as a Path, or raise a one-line InputError when it does not exist."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", path=p, expected=f"the {what}")
    if not p.is_file():
        raise InputError("not a regular file", path=p, expected=f"the {what}")
    return p


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its suffix)."""
    p = Path(path)
    raw = p.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(
                f"corrupt gzip data ({exc})", path=p, expected="a readable .gz file"
            ) from exc
    return raw


def decode(raw: bytes, path: str | Path, fallback: str = "latin-1") -> tuple[str, str]:
    """Decode `raw`; returns (text, encoding used).

    - a UTF-8 byte-order mark: UTF-8 (the mark is removed);
    - bytes that are valid UTF-8: UTF-8 (pure ASCII decodes identically either way);
    - otherwise `fallback` (latin-1 never fails). With fallback="utf-8" invalid bytes raise an
      InputError naming the line.
    A latin-1 file that happens to be valid UTF-8 would need multi-byte sequences made only of
    latin-1 letters in exactly UTF-8's lead/continuation pattern, which real text does not have.
    """
    if raw.startswith(UTF8_BOM):
        enc, body = "utf-8-sig", raw[len(UTF8_BOM) :]
    else:
        enc, body = "utf-8", raw
    try:
        return body.decode("utf-8"), enc
    except UnicodeDecodeError as exc:
        if fallback.replace("_", "-").lower() in ("utf-8", "utf8", "utf-8-sig"):
            line = raw[: exc.start].count(b"\n") + 1
            raise InputError(
                f"invalid UTF-8 byte {raw[exc.start]:#04x} on line {line}",
                path=path,
                expected="UTF-8 text",
            ) from exc
        return raw.decode(fallback), fallback


def _describe_delimiter(sep: str) -> str:
    return {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}.get(sep, repr(sep))


def check_header(header_line: str, path: str | Path, columns: list[str], delimiter: str) -> None:
    """Raise a one-line InputError when the header uses another delimiter than `delimiter`."""
    kind = "comma CSV" if delimiter == "," else f"{_describe_delimiter(delimiter)}-separated file"
    expected = f"a {kind} with columns {', '.join(columns)}"
    if delimiter in header_line:
        return
    for other in [",", "\t", ";", "|"]:
        if other != delimiter and other in header_line:
            raise InputError(
                f"header is {_describe_delimiter(other)}-separated: {header_line[:120]!r}",
                path=path,
                row=1,
                expected=expected,
            )
    if len(columns) > 1:
        raise InputError(
            f"header has a single field {header_line[:120]!r}",
            path=path,
            row=1,
            expected=expected,
        )


def read_delimited(
    path: str | Path,
    columns: list[str],
    *,
    what: str,
    delimiter: str = ",",
    fallback_encoding: str = "latin-1",
    strict_quoting: bool = True,
) -> CsvTable:
    """Read a delimited file with a header holding at least `columns` (extra columns are kept).

    Raises InputError (one line: file, row, expectation) for: missing file, empty file, a header
    with another delimiter, missing columns, broken quoting. Records with the wrong number of
    fields are returned in `ragged`, not raised, so the caller can quarantine them.
    `strict_quoting=False` accepts stray quotes inside fields the way pandas does.
    """
    p = require_file(path, what)
    text, encoding = decode(read_bytes(p), p, fallback_encoding)
    if not text.strip():
        raise InputError(
            "file is empty", path=p, expected=f"a header with columns {', '.join(columns)}"
        )
    first_line = text.split("\n", 1)[0].rstrip("\r")
    check_header(first_line, p, columns, delimiter)

    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=strict_quoting
    )
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        raise InputError(
            f"unreadable header ({exc})", path=p, row=1, expected=f"columns {', '.join(columns)}"
        ) from exc
    kind = "comma CSV" if delimiter == "," else f"{_describe_delimiter(delimiter)}-separated file"
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(header) or 'none'}",
            path=p,
            row=1,
            expected=f"a {kind} with columns {', '.join(columns)}",
        )
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise InputError(
            f"duplicate column(s) {', '.join(dup)}", path=p, row=1, expected="unique column names"
        )

    n = len(header)
    cols: list[list[str]] = [[] for _ in range(n)]
    rows: list[int] = []
    bad_rows: list[int] = []
    bad_fields: list[int] = []
    bad_lines: list[str] = []
    start = reader.line_num + 1  # physical line on which the next record starts
    try:
        for rec in reader:
            if not rec:  # a blank line holds no data; numbering still counts it
                start = reader.line_num + 1
                continue
            if len(rec) == n:
                rows.append(start)
                for i, value in enumerate(rec):
                    cols[i].append(value)
            else:
                bad_rows.append(start)
                bad_fields.append(len(rec))
                bad_lines.append(delimiter.join(rec))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(
            f"malformed quoting ({exc})",
            path=p,
            row=start,
            expected=f"{kind} records with '\"'-quoted fields",
        ) from exc

    frame = pl.DataFrame(
        {ROW: pl.Series(ROW, rows, dtype=pl.Int64)}
        | {
            name: pl.Series(name, values, dtype=pl.String)
            for name, values in zip(header, cols, strict=True)
        }
    )
    ragged = pl.DataFrame(
        {
            ROW: pl.Series(ROW, bad_rows, dtype=pl.Int64),
            "fields": pl.Series("fields", bad_fields, dtype=pl.Int64),
            "line": pl.Series("line", bad_lines, dtype=pl.String),
        }
    )
    return CsvTable(frame=frame, ragged=ragged, encoding=encoding, path=str(p))


def quarantine_ragged(table: CsvTable, quarantine: Quarantine) -> int:
    """Send `table.ragged` to `quarantine` under MALFORMED; returns how many rows."""
    if table.ragged.height:
        quarantine.add(table.ragged, source=table.path, reason=MALFORMED)
    return table.ragged.height
