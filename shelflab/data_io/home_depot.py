"""Loader for Kaggle's "Home Depot Product Search Relevance" (2016) files.

Input (plain or gzipped, detected from the bytes, not the suffix):
- train.csv:    id, product_uid, product_title, search_term, relevance
- products.csv: product_uid, product_title   (the catalog search runs over)
Both are comma CSVs, every field quoted except numbers, encoded latin-1 (a UTF-8 file, with or
without BOM, is recognised and decoded as UTF-8).

Output: `SearchDataset` with
- items:   item_id (= product_uid), text (= title, raw), title      one row per catalog product
- queries: query_id, text (= the raw search term)                   one row per distinct term
- qrels:   query_id, item_id, grade (from `relevance` by `grade_mapping`)

Query ids are `"hd-" + sha1(raw search term, UTF-8)[:12]`: the same term gets the same id in
the full file, in the shipped sample and in any other subset. Terms are taken verbatim (no
stripping or case folding): the full file's 9,436 distinct terms give 9,436 queries; near-
duplicates that differ only by case/spacing are kept apart here and grouped by the split.

Rows that cannot be used go to the Quarantine with their original row number (header = row 1)
and one of the reasons below; nothing is dropped silently. Duplicate (search_term,
product_uid) pairs: identical relevance -> the first row is kept and the repeats quarantined;
different relevance -> every row of that pair is quarantined (no averaging: the raters' labels
are already means, and a conflict means the pair is unreliable). Train titles are not used (the
catalog's title is); `stats["train_title_differs"]` counts pairs whose two titles differ.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from shelflab.contract import GRADE, ITEM_ID, QUERY_ID, TEXT
from shelflab.data_io.csvutil import MALFORMED, CsvTable, quarantine_ragged, read_delimited
from shelflab.data_io.dataset import SearchDataset, stable_ids
from shelflab.errors import ConfigError, InputError
from shelflab.quarantine import Quarantine

TRAIN_COLUMNS = ["id", "product_uid", "product_title", "search_term", "relevance"]
PRODUCT_COLUMNS = ["product_uid", "product_title"]
QUERY_ID_PREFIX = "hd-"
RELEVANCE_MIN, RELEVANCE_MAX = 1.0, 3.0

# Quarantine reasons (stable strings: counts are reported per reason).
R_EMPTY_UID = "empty product_uid"
R_EMPTY_TITLE = "empty product_title"
R_DUP_PRODUCT = "duplicate product_uid in catalog (first kept)"
R_RELEVANCE_NAN = "relevance is not a number"
R_RELEVANCE_RANGE = "relevance outside [1, 3]"
R_EMPTY_TERM = "empty search_term"
R_UNKNOWN_PRODUCT = "unknown product (product_uid not in the products catalog)"
R_PRODUCT_QUARANTINED = "product was quarantined from the catalog"
R_DUP_PAIR = "duplicate (search_term, product_uid), same relevance (first kept)"
R_CONFLICT = "conflicting relevance for the same (search_term, product_uid)"


def _round_half_up(rel: pl.Expr) -> pl.Expr:
    return (rel + 0.5).floor() - 1.0


GRADE_MAPPINGS: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    # relevance 1..3 -> grade 0..2 (the WANDS scale; 1 = irrelevant = unjudged = 0). Default.
    "minus_one": lambda rel: rel - 1.0,
    # the raw mean rating 1..3 (note: an irrelevant judged pair then has grade 1 > unjudged 0).
    "identity": lambda rel: rel,
    # round half up, then minus one: 0, 1, 2 integers (1.5 -> 1, 2.5 -> 2).
    "round": _round_half_up,
}


def grade_expr(mapping: str, column: str = "relevance") -> pl.Expr:
    """The polars expression mapping `column` (Float64 relevance) to a grade."""
    try:
        fn = GRADE_MAPPINGS[mapping]
    except KeyError:
        raise ConfigError(
            f"unknown grade_mapping {mapping!r} (expected one of: "
            f"{', '.join(sorted(GRADE_MAPPINGS))})"
        ) from None
    # rounded to 6 decimals so that 2.33 - 1 is 1.33, not 1.3299999999999998
    return fn(pl.col(column)).cast(pl.Float64).round(6)


def _quarantine(
    q: Quarantine, counts: dict[str, int], rows: pl.DataFrame, source: str, reason: str
) -> None:
    if rows.height:
        q.add(rows, source=source, reason=reason)
        key = f"{Path(source).name}: {reason}"
        counts[key] = counts.get(key, 0) + rows.height


def load_products(
    products_path: str | Path, *, quarantine: Quarantine, counts: dict[str, int] | None = None
) -> pl.DataFrame:
    """The catalog as items (item_id, text, title), in file order; bad rows quarantined
    (empty product_uid or title, repeated product_uid: the first is kept)."""
    return _load_products(products_path, quarantine, {} if counts is None else counts)[0]


def _load_products(
    products_path: str | Path, quarantine: Quarantine, counts: dict[str, int]
) -> tuple[pl.DataFrame, set[str], int, str]:
    """(items, uids quarantined, records read, encoding)."""
    table = read_delimited(products_path, PRODUCT_COLUMNS, what="Home Depot products.csv")
    src = table.path
    n_ragged = _quarantine_ragged(table, quarantine, counts)
    df = table.frame.with_columns(pl.col("product_uid").str.strip_chars())
    dropped: set[str] = set()
    empty_uid = df["product_uid"].str.len_chars() == 0
    _quarantine(quarantine, counts, df.filter(empty_uid), src, R_EMPTY_UID)
    df = df.filter(~empty_uid)
    empty_title = df["product_title"].str.strip_chars().str.len_chars() == 0
    dropped |= set(df.filter(empty_title)["product_uid"].to_list())
    _quarantine(quarantine, counts, df.filter(empty_title), src, R_EMPTY_TITLE)
    df = df.filter(~empty_title)
    dup = ~df["product_uid"].is_first_distinct()
    _quarantine(quarantine, counts, df.filter(dup), src, R_DUP_PRODUCT)
    df = df.filter(~dup)
    dropped -= set(df["product_uid"].to_list())  # a later good row of the same uid is kept
    items = df.select(
        pl.col("product_uid").alias(ITEM_ID),
        pl.col("product_title").alias(TEXT),
        pl.col("product_title").alias("title"),
    )
    return items, dropped, table.frame.height + n_ragged, table.encoding


def _quarantine_ragged(table: CsvTable, quarantine: Quarantine, counts: dict[str, int]) -> int:
    n = quarantine_ragged(table, quarantine)
    if n:
        counts[f"{Path(table.path).name}: {MALFORMED}"] = n
    return n


def load_home_depot(
    train_path: str | Path,
    products_path: str | Path,
    grade_mapping: str = "minus_one",
    *,
    quarantine: Quarantine,
) -> SearchDataset:
    """Load train.csv + products.csv into a SearchDataset (see the module docstring).

    Raises InputError (one line naming file, row, expectation) for a missing file, a header with
    the wrong delimiter or missing columns, broken quoting; ConfigError for an unknown
    `grade_mapping`. Unusable rows go to `quarantine`; per-reason counts are in `stats`.
    """
    grade = grade_expr(grade_mapping, "_rel")  # fail fast on a bad mapping name
    counts: dict[str, int] = {}
    items, dropped_uids, n_products, products_encoding = _load_products(
        products_path, quarantine, counts
    )

    table = read_delimited(train_path, TRAIN_COLUMNS, what="Home Depot train.csv")
    src = table.path
    n_train = table.frame.height + _quarantine_ragged(table, quarantine, counts)
    df = table.frame.with_columns(
        pl.col("product_uid").str.strip_chars(),
        pl.col("relevance").str.strip_chars().cast(pl.Float64, strict=False).alias("_rel"),
    )

    # Row-level checks, in order; each row is quarantined under the first reason that applies.
    checks: list[tuple[str, pl.Expr]] = [
        (R_EMPTY_UID, pl.col("product_uid").str.len_chars() == 0),
        (
            R_RELEVANCE_NAN,
            pl.col("_rel").is_null() | pl.col("_rel").is_nan() | pl.col("_rel").is_infinite(),
        ),
        (R_RELEVANCE_RANGE, (pl.col("_rel") < RELEVANCE_MIN) | (pl.col("_rel") > RELEVANCE_MAX)),
        (R_EMPTY_TERM, pl.col("search_term").str.strip_chars().str.len_chars() == 0),
        (
            R_PRODUCT_QUARANTINED,
            pl.col("product_uid").is_in(pl.Series(sorted(dropped_uids), dtype=pl.String).implode()),
        ),
        (R_UNKNOWN_PRODUCT, ~pl.col("product_uid").is_in(items[ITEM_ID].implode())),
    ]
    for reason, bad in checks:
        mask = df.select(bad.fill_null(False).alias("m"))["m"]
        _quarantine(quarantine, counts, df.filter(mask).drop("_rel"), src, reason)
        df = df.filter(~mask)

    # Duplicate (search_term, product_uid) pairs: conflicting -> all out; identical -> first kept.
    key = ["search_term", "product_uid"]
    conflict = df.select((pl.col("_rel").n_unique().over(key) > 1).alias("c"))["c"]
    _quarantine(quarantine, counts, df.filter(conflict).drop("_rel"), src, R_CONFLICT)
    df = df.filter(~conflict)
    repeat = ~df.select(pl.struct(key).is_first_distinct().alias("f"))["f"]
    _quarantine(quarantine, counts, df.filter(repeat).drop("_rel"), src, R_DUP_PAIR)
    df = df.filter(~repeat)

    df = df.with_columns(stable_ids(df["search_term"], QUERY_ID_PREFIX).alias(QUERY_ID))
    title_differs = (
        df.join(
            items.select(ITEM_ID, pl.col("title").alias("_cat")),
            left_on="product_uid",
            right_on=ITEM_ID,
            how="left",
        )
        .filter(pl.col("product_title") != pl.col("_cat"))
        .height
    )
    queries = df.select(QUERY_ID, pl.col("search_term").alias(TEXT)).unique(
        subset=[QUERY_ID], keep="first", maintain_order=True
    )
    qrels = df.select(QUERY_ID, pl.col("product_uid").alias(ITEM_ID), grade.alias(GRADE))

    stats = {
        "train_path": str(train_path),
        "products_path": str(products_path),
        "encoding": {"train": table.encoding, "products": products_encoding},
        "grade_mapping": grade_mapping,
        "train_rows": n_train,
        "product_rows": n_products,
        "items": items.height,
        "queries": queries.height,
        "qrels": qrels.height,
        "quarantined": dict(sorted(counts.items())),
        "quarantined_total": sum(counts.values()),
        "train_title_differs": title_differs,
    }
    return SearchDataset(name="home_depot", items=items, queries=queries, qrels=qrels, stats=stats)


def find_home_depot_files(directory: str | Path) -> tuple[Path, Path]:
    """(train, products) in `directory`: train.csv or train.csv.gz, products.csv or
    products.csv.gz (the plain file wins when both exist). Raises InputError if absent."""
    d = Path(directory)
    found = []
    for stem in ("train", "products"):
        for candidate in (d / f"{stem}.csv", d / f"{stem}.csv.gz"):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            raise InputError(
                "file not found",
                path=d / f"{stem}.csv[.gz]",
                expected=f"Home Depot {stem}.csv or {stem}.csv.gz in {d}",
            )
    return found[0], found[1]


def load_home_depot_dir(
    directory: str | Path, grade_mapping: str = "minus_one", *, quarantine: Quarantine
) -> SearchDataset:
    """`load_home_depot` on the train/products files found in `directory`."""
    train, products = find_home_depot_files(directory)
    return load_home_depot(train, products, grade_mapping, quarantine=quarantine)
