"""Reading RecBole "atomic" files (recbole.io/docs/user_guide/data/atomic_files.html).

An atomic file is tab-separated UTF-8 with a header row whose fields are `name:type`, the type
one of token, token_seq, float, float_seq (e.g. `item_id:token  title:token
categories:token_seq`). Fields may be `"`-quoted (a quoted field can hold a tab, as two titles
of the Amazon 2018 Appliances item file do), so the file is parsed with the quote-aware reader
of `csvutil`, which also gives each record its physical line number (header = line 1).

A `token_seq` is normally space-separated tokens; some Amazon conversions write it as the body
of a Python list instead (`'Appliances', 'Water Filters'`). `token_seq_values` accepts both.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

from shelflab.data_io.csvutil import ROW, CsvTable, read_delimited
from shelflab.errors import InputError

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
_TYPED_FIELD = re.compile(r"^[^:\s]+:(?:" + "|".join(FIELD_TYPES) + r")$")


def is_atomic_header(line: str) -> bool:
    """True when `line` looks like an atomic-file header: tab-separated `name:type` fields."""
    fields = line.rstrip("\r\n").split("\t")
    return any(_TYPED_FIELD.match(f.strip()) for f in fields)


def field_name(column: str) -> str:
    """`item_id:token` -> `item_id` (a column without a type is returned unchanged)."""
    return column.split(":", 1)[0].strip()


def read_atomic(path: str | Path, required: list[str], *, what: str) -> CsvTable:
    """The atomic file as a CsvTable whose columns are renamed to bare field names.

    Raises InputError for a header lacking one of the `required` bare names (e.g. ["item_id"]),
    and, via `csvutil.read_delimited`, for a missing/empty file or broken quoting.
    """
    table = read_delimited(path, [], what=what, delimiter="\t", fallback_encoding="utf-8")
    typed = [c for c in table.frame.columns if c != ROW]
    names = [field_name(c) for c in typed]
    missing = [r for r in required if r not in names]
    if missing or len(set(names)) != len(names):
        problem = f"missing field(s) {', '.join(missing)}" if missing else "repeated field names"
        raise InputError(
            f"{problem}; header is {', '.join(typed) or 'empty'}",
            path=table.path,
            row=1,
            expected=f"a RecBole atomic header with {', '.join(f'{r}:token' for r in required)}",
        )
    renamed = table.frame.rename(dict(zip(typed, names, strict=True)))
    return CsvTable(frame=renamed, ragged=table.ragged, encoding=table.encoding, path=table.path)


@lru_cache(maxsize=65536)
def token_seq_values(value: str) -> tuple[str, ...]:
    """The tokens of a token_seq field: a Python-list body (`'a b', 'c'`) when it parses as
    one, else the space-separated tokens. Cached: such fields repeat a lot (57 distinct values
    over 30k Appliances items)."""
    text = value.strip()
    if not text:
        return ()
    if text[0] in "'\"[":
        try:
            parsed = ast.literal_eval(text if text[0] == "[" else f"[{text}]")
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            parsed = None
        if isinstance(parsed, (list, tuple)) and all(isinstance(x, str) for x in parsed):
            return tuple(x.strip() for x in parsed if x.strip())
    return tuple(text.split())
