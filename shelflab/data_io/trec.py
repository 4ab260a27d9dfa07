"""Read and write qrels and runs: TREC text, CSV or Parquet, into the contract's tables.

Formats, by file name (a trailing .gz means gzip):
- .parquet / .pq: Parquet with the contract columns (query_id, item_id, grade | score[, rank]).
- .csv: CSV with a header naming the contract columns.
- anything else (.tsv, .txt, .qrels, .run, .trec, no extension, ...): TREC text, fields separated
  by whitespace: qrels `query_id iteration item_id grade` (grade may be a float), runs
  `query_id Q0 item_id rank score tag`. Blank lines are skipped.

Ids are always strings. Every problem is one InputError naming the file, the row (1-based;
header = row 1 in a CSV) and what was expected: missing file, wrong number of fields,
non-numeric or non-finite grade/score, duplicate (query_id, item_id) in a run, conflicting
grades in qrels (identical duplicate judgments are collapsed).
"""

from __future__ import annotations

import gzip
import io
import mmap
import os
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv

from shelflab.atomic import atomic_path
from shelflab.contract import (
    GRADE,
    ITEM_ID,
    QUERY_ID,
    RANK,
    SCORE,
    CheckedRun,
    Keys,
    add_rank,
    check_run,
    first_duplicate_pair,
    may_repeat,
    pair_hash,
    query_hash,
    validate_qrels,
    validate_run,
)
from shelflab.data_io.csvutil import UTF8_BOM
from shelflab.errors import ConfigError, InputError

__all__ = ["read_qrels", "read_run", "read_run_checked", "write_qrels_trec", "write_run_trec"]

QRELS_FORMAT = "4 whitespace-separated fields: query_id iteration item_id grade (TREC qrels)"
RUN_FORMAT = "6 whitespace-separated fields: query_id Q0 item_id rank score tag (TREC run)"
_UNSUPPORTED = {".json", ".jsonl", ".xlsx", ".xls", ".zip", ".pkl", ".npy", ".npz", ".arrow"}


def read_qrels(path: str | Path) -> pl.DataFrame:
    """Qrels as query_id (str), item_id (str), grade (float)."""
    path = Path(path)
    kind = _kind(path)
    if kind == "trec":
        df = _read_trec(path, [QUERY_ID, None, ITEM_ID, GRADE], {GRADE: pl.Float64}, QRELS_FORMAT)
        _check_numbers(df, GRADE, pl.Float64, path, "a number")
        _check_conflicts(df, path)
        return validate_qrels(df.drop("row", strict=False), str(path))
    return _read_table(path, kind, validate_qrels)


def read_run(path: str | Path) -> pl.DataFrame:
    """Run as query_id (str), item_id (str), score (float), rank (int). A CSV/Parquet run
    without a rank column gets one from the scores (descending, ties by item_id descending)."""
    return read_run_checked(path).frame


def read_run_checked(path: str | Path) -> CheckedRun:
    """`read_run` with the keys its checks hashed, for `evaluate` to take without checking the
    run again (what `shelflab evaluate --run` reads)."""
    path = Path(path)
    kind = _kind(path)
    if kind != "trec":
        return _read_table(path, kind, check_run)
    df = _read_trec(
        path,
        [QUERY_ID, None, ITEM_ID, RANK, SCORE, None],
        {RANK: pl.Int64, SCORE: pl.Float64},
        RUN_FORMAT,
    )
    _check_numbers(df, RANK, pl.Int64, path, "an integer rank")
    _check_numbers(df, SCORE, pl.Float64, path, "a number")
    keys = Keys.of(df)
    _check_duplicates(df, path, keys.pair)
    # the checks above are validate_run's, with file rows: no second pass over 5M rows
    return CheckedRun(df.select(QUERY_ID, ITEM_ID, SCORE, RANK), keys)


def write_run_trec(run: pl.DataFrame, path: str | Path, tag: str = "shelflab") -> None:
    """Write `query_id Q0 item_id rank score tag` lines, atomically. Ranks are recomputed from
    the scores (descending, ties by item_id descending: the order trec_eval reads back)."""
    if not tag or any(c.isspace() for c in tag):
        raise ConfigError(f"run tag must be a non-empty word without whitespace, got {tag!r}")
    # the given rank is replaced by one recomputed from the scores
    run = add_rank(validate_run(run.with_columns(pl.lit(0, pl.Int64).alias(RANK)), "run"))
    _check_ids(run, Path(path))
    lines = run.select(
        pl.concat_str(
            [
                pl.col(QUERY_ID),
                pl.lit("Q0"),
                pl.col(ITEM_ID),
                pl.col(RANK).cast(pl.String),
                pl.col(SCORE).cast(pl.String),
                pl.lit(tag),
            ],
            separator=" ",
        )
    ).to_series()
    _write_lines(lines, Path(path))


def write_qrels_trec(qrels: pl.DataFrame, path: str | Path) -> None:
    """Write `query_id 0 item_id grade` lines, atomically (integral grades without '.0')."""
    qrels = validate_qrels(qrels, "qrels").sort([QUERY_ID, ITEM_ID])
    _check_ids(qrels, Path(path))
    grade = pl.col(GRADE)
    text = pl.when(grade == grade.round()).then(grade.cast(pl.Int64).cast(pl.String))
    lines = qrels.select(
        pl.concat_str(
            [pl.col(QUERY_ID), pl.lit("0"), pl.col(ITEM_ID), text.otherwise(grade.cast(pl.String))],
            separator=" ",
        )
    ).to_series()
    _write_lines(lines, Path(path))


# --- internals -------------------------------------------------------------------------------


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if not path.exists():
        raise InputError("file not found", path=path, expected="an existing qrels/run file")
    if path.is_dir():
        raise InputError("is a directory", path=path, expected="a qrels/run file")
    if last in (".parquet", ".pq"):
        return "parquet"
    if last == ".csv":
        return "csv"
    if last in _UNSUPPORTED:
        raise InputError(
            f"unsupported file type {last}",
            path=path,
            expected="TREC text, .csv or .parquet",
        )
    return "trec"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes (gunzipped), without a leading UTF-8 byte order mark: editors on
    Windows add one, and it would become part of the first query id."""
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path) as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read: {exc}", path=path) from None
    return data.removeprefix(UTF8_BOM)


_ODD_SPACE = (b"\t", b"\r", b"\x0b", b"\x0c")


def _plain_bytes(data: bytes) -> bool:
    """ASCII, fields and lines separated by single spaces and newlines only."""
    return bool(data) and data.isascii() and not any(c in data for c in _ODD_SPACE)


def _plain_file(path: Path) -> bool:
    """`_plain_bytes` of an uncompressed file, checked through a memory map: the fast reader
    then parses the file in place instead of from a copy of its bytes (a third of its time on
    a 300 MB run). A byte order mark is not ASCII: such files take the copying path."""
    try:
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return False
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                if any(mapped.find(c) >= 0 for c in _ODD_SPACE):
                    return False
                view = np.frombuffer(mapped, dtype=np.uint8)
                ascii_only = bool(view.max() < 128)
                del view  # the map cannot close while a view exports its buffer
                return ascii_only
    except (OSError, ValueError):
        return False  # the copying path reads it again and names the problem


def _fast_fields(
    source: bytes | Path, names: list[str | None], dtypes: dict[str, pl.DataType]
) -> pl.DataFrame | None:
    """The common layout (ASCII, one space between fields, one line per row, as trec_eval and
    every ranker write it: see `_plain_bytes`) parsed and typed by Arrow's CSV reader, several
    times faster than splitting lines. None for any bad value, blank line or field count: the
    exact reader then reads it and names the line.

    Arrow rather than polars: it checks every line's field count while converting only the
    kept columns (polars stops checking once columns are projected away), a third less time
    on a 300 MB run than polars converting all six."""
    columns = [name or f"_ignored{i}" for i, name in enumerate(names)]
    kept = [name for name in names if name is not None]
    arrow_types = {pl.Float64: pa.float64(), pl.Int64: pa.int64()}
    try:
        table = pa_csv.read_csv(
            str(source) if isinstance(source, Path) else pa.BufferReader(source),
            read_options=pa_csv.ReadOptions(column_names=columns, block_size=1 << 24),
            parse_options=pa_csv.ParseOptions(
                delimiter=" ", quote_char=False, escape_char=False, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={c: arrow_types.get(dtypes.get(c), pa.string()) for c in kept},
                include_columns=kept,
                null_values=[],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError):
        return None  # a blank line, a line with another field count, a value that is no number
    df = pl.from_arrow(table)
    if not isinstance(df, pl.DataFrame) or df.height == 0 or sum(df.null_count().row(0)):
        return None
    floats = [c for c in kept if dtypes.get(c) == pl.Float64]
    if floats and not df.select(pl.all_horizontal(pl.col(floats).is_finite().all())).item():
        return None  # NaN or inf: the exact reader names the row
    # no `row` column: without blank lines a row's line is its index + 1 (see `_rows`)
    return df.select(kept)


def _rows(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with its `row` column (the file's 1-based line): the fast reader leaves it out,
    since its rows are the file's lines, and only an error needs it."""
    if "row" in df.columns:
        return df
    return df.with_row_index("row", offset=1).with_columns(pl.col("row").cast(pl.Int64))


def _read_trec(
    path: Path, names: list[str | None], dtypes: dict[str, pl.DataType], expected: str
) -> pl.DataFrame:
    """Split each non-blank line on whitespace into len(names) fields (None = ignored field);
    column `row` keeps the 1-based line number (absent when it is the row index + 1: see
    `_rows`). Well-formed files come back with `dtypes`
    applied; any other file comes back as strings for `_check_numbers` to cast and report."""
    fast, data = None, None
    if path.suffix.lower() != ".gz" and _plain_file(path):
        fast = _fast_fields(path, names, dtypes)
    else:
        data = _read_bytes(path)
        if _plain_bytes(data):
            fast = _fast_fields(data, names, dtypes)
    if fast is not None:
        return fast
    data = _read_bytes(path) if data is None else data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError("not UTF-8 text", path=path, row=line, expected=expected) from None
    lines = pl.DataFrame({"line": text.split("\n")}).with_row_index("row", offset=1)
    fields = lines.select(
        pl.col("row").cast(pl.Int64), pl.col("line").str.extract_all(r"\S+").alias("f")
    ).filter(pl.col("f").list.len() > 0)
    if fields.height == 0:
        raise InputError("no data rows", path=path, expected=expected)
    wrong = fields.filter(pl.col("f").list.len() != len(names))
    if wrong.height:
        row, found = wrong["row"][0], wrong["f"][0].to_list()
        raise InputError(
            f"{len(found)} field(s): {' '.join(found)[:120]!r}",
            path=path,
            row=row,
            expected=expected,
        )
    return fields.select(
        "row",
        *[pl.col("f").list.get(i).alias(n) for i, n in enumerate(names) if n is not None],
    )


def _check_numbers(df: pl.DataFrame, name: str, dtype: pl.DataType, path: Path, what: str) -> None:
    """Cast column `name` of `df` in place; a non-numeric or non-finite value is an error
    naming its row (column `row`)."""
    cast = df[name].cast(dtype, strict=False)
    bad = cast.is_null() & df[name].is_not_null()
    if dtype == pl.Float64:
        bad = bad | ~cast.is_finite().fill_null(True)
    if bad.any():
        i = int(bad.arg_max())
        kind = "non-numeric" if cast[i] is None else "non-finite"
        row = int(_rows(df)["row"][i])
        raise InputError(f"{kind} {name} {df[name][i]!r}", path=path, row=row, expected=what)
    df.replace_column(df.get_column_index(name), cast)


def _check_conflicts(df: pl.DataFrame, path: Path) -> None:
    if not may_repeat(pair_hash(query_hash(df[QUERY_ID]), df[ITEM_ID])):
        return  # no (query_id, item_id) repeats
    df = _rows(df)
    distinct = df.unique(subset=[QUERY_ID, ITEM_ID, GRADE], keep="first", maintain_order=True)
    i = first_duplicate_pair(distinct)
    if i is not None:
        q, d = distinct[QUERY_ID][i], distinct[ITEM_ID][i]
        clash = df.filter((pl.col(QUERY_ID) == q) & (pl.col(ITEM_ID) == d))
        rows = clash["row"].to_list()
        raise InputError(
            f"conflicting grades {clash[GRADE].to_list()} for query {q!r}, item {d!r} "
            f"(rows {', '.join(map(str, rows))})",
            path=path,
            row=rows[-1],
            expected="one grade per (query_id, item_id)",
        )


def _check_duplicates(df: pl.DataFrame, path: Path, pair: np.ndarray) -> None:
    i = first_duplicate_pair(df, pair)
    if i is not None:
        df = _rows(df)
        q, d = df[QUERY_ID][i], df[ITEM_ID][i]
        rows = df.filter((pl.col(QUERY_ID) == q) & (pl.col(ITEM_ID) == d))["row"].to_list()
        raise InputError(
            f"item {d!r} appears more than once for query {q!r} (rows {', '.join(map(str, rows))})",
            path=path,
            row=rows[1],
            expected="each item at most once per query",
        )


def _read_table(path: Path, kind: str, validate):
    try:
        if kind == "parquet":
            df = pl.read_parquet(io.BytesIO(_read_bytes(path)))
        else:
            df = pl.read_csv(io.BytesIO(_read_bytes(path)), infer_schema=False)
    except InputError:
        raise
    except Exception as exc:  # polars raises several exception types for malformed files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot parse as {kind}: {first}", path=path) from None
    if df.height == 0:
        raise InputError("no data rows", path=path, expected="at least one row")
    offset = 1 if kind == "csv" else 0  # the CSV header is row 1
    if validate in (validate_run, check_run) and RANK not in df.columns and SCORE in df.columns:
        # rank from the scores needs numeric scores: check them first, with the file's rows
        numbered = df.with_row_index("row", offset=1 + offset).with_columns(
            pl.col("row").cast(pl.Int64)
        )
        _check_numbers(numbered, SCORE, pl.Float64, path, "a number")
        df = numbered.drop("row")
    try:
        return validate(df, str(path))
    except InputError as exc:
        if exc.row is None or not offset:
            raise
        raise InputError(
            exc.detail, path=path, row=exc.row + offset, expected=exc.expected
        ) from None


def _check_ids(df: pl.DataFrame, path: Path) -> None:
    for name in (QUERY_ID, ITEM_ID):
        bad = df[name].str.contains(r"\s") | (df[name].str.len_chars() == 0)
        if bad.any():
            i = int(bad.arg_max())
            raise InputError(
                f"{name} {df[name][i]!r} cannot be written to a TREC file",
                path=path,
                expected="ids without whitespace",
            )


def _write_lines(lines: pl.Series, path: Path) -> None:
    data = ("\n".join(lines.to_list()) + "\n").encode("utf-8") if lines.len() else b""
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gz":
            with gzip.open(tmp, "wb") as fh:
                fh.write(data)
        else:
            tmp.write_bytes(data)
