"""Write a polars table by extension (.parquet, .csv, .tsv), atomically."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shelflab.atomic import atomic_path
from shelflab.errors import InputError


def write_table(df: pl.DataFrame, path: str | Path) -> None:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".parquet", ".csv", ".tsv"}:
        raise InputError(
            "unsupported output extension", path=path, expected=".parquet, .csv or .tsv"
        )
    with atomic_path(path, suffix) as tmp:
        if suffix == ".parquet":
            df.write_parquet(tmp)
        else:
            df.write_csv(tmp, separator="\t" if suffix == ".tsv" else ",")
