"""New query files for `shelflab retrieve`: TSV `query_id<TAB>text` (no header) or Parquet."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shelflab.contract import QUERY_ID, TEXT, validate_queries
from shelflab.data_io.csvutil import UTF8_BOM
from shelflab.errors import InputError


def read_queries(path: str | Path) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path=path, expected="a TSV or Parquet query file")
    if path.suffix == ".parquet":
        df = pl.read_parquet(path)
    else:
        rows = []
        with open(path, "rb") as fh:
            for n, raw in enumerate(fh, start=1):
                if n == 1:
                    raw = raw.removeprefix(UTF8_BOM)  # a byte order mark is not part of the id
                try:
                    line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
                except UnicodeDecodeError:
                    raise InputError(
                        "not valid UTF-8", path=path, row=n, expected="a UTF-8 text file"
                    ) from None
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) != 2:
                    raise InputError(
                        f"found {len(fields)} tab-separated field(s)",
                        path=path,
                        row=n,
                        expected="query_id<TAB>text, no header",
                    )
                rows.append(fields)
        if not rows:
            raise InputError("no queries", path=path, expected="at least one query_id<TAB>text")
        df = pl.DataFrame(rows, schema=[QUERY_ID, TEXT], orient="row")
    return validate_queries(df, str(path))
