"""Loader for WANDS, the Wayfair ANnotation Dataset (github.com/wayfair/WANDS, MIT; Chen et al.,
ECIR 2022), in its published format: three TAB-separated UTF-8 files with a header row,
read the way the publisher's notebook reads them (`pd.read_csv(path, sep="\\t")`).

- product.csv: product_id, product_name, product_class, category hierarchy (sic, with a space),
  product_description, product_features, rating_count, average_rating, review_count
- query.csv:   query_id, query, query_class
- label.csv:   id, query_id, product_id, label  (Exact / Partial / Irrelevant)

Output: `SearchDataset` with
- items:   item_id (= product_id), text (= product_name, raw), plus product_class,
           category_hierarchy (renamed: no space), product_description, product_features
           (String, empty -> null) and rating_count, average_rating, review_count (Float64)
- queries: query_id (WANDS's own id, as a string), text (= query, raw), query_class
- qrels:   query_id, item_id, grade (Exact 2, Partial 1, Irrelevant 0; `label_grades`)

WANDS ids are kept as published (they are stable), so qrels compare directly with other work on
WANDS. Unusable rows are quarantined with their row number (header = row 1) and a reason;
duplicate (query_id, product_id) labels follow the Home Depot rule: identical -> first kept,
conflicting -> all quarantined.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shelflab.contract import GRADE, ITEM_ID, QUERY_ID, TEXT
from shelflab.data_io.csvutil import MALFORMED, CsvTable, read_delimited
from shelflab.data_io.dataset import SearchDataset
from shelflab.errors import InputError
from shelflab.quarantine import Quarantine

PRODUCT_COLUMNS = [
    "product_id",
    "product_name",
    "product_class",
    "category hierarchy",
    "product_description",
    "product_features",
    "rating_count",
    "average_rating",
    "review_count",
]
REQUIRED_PRODUCT_COLUMNS = ["product_id", "product_name"]
QUERY_COLUMNS = ["query_id", "query", "query_class"]
REQUIRED_QUERY_COLUMNS = ["query_id", "query"]
LABEL_COLUMNS = ["id", "query_id", "product_id", "label"]
NUMERIC_PRODUCT_COLUMNS = ["rating_count", "average_rating", "review_count"]
LABEL_GRADES: dict[str, float] = {"Exact": 2.0, "Partial": 1.0, "Irrelevant": 0.0}

R_EMPTY_PRODUCT_ID = "empty product_id"
R_EMPTY_NAME = "empty product_name"
R_DUP_PRODUCT = "duplicate product_id (first kept)"
R_EMPTY_QUERY_ID = "empty query_id"
R_EMPTY_QUERY = "empty query"
R_DUP_QUERY = "duplicate query_id (first kept)"
R_BAD_LABEL = "label not one of Exact/Partial/Irrelevant"
R_UNKNOWN_QUERY = "unknown query_id (not in query.csv)"
R_QUERY_QUARANTINED = "query was quarantined from query.csv"
R_UNKNOWN_PRODUCT = "unknown product_id (not in product.csv)"
R_PRODUCT_QUARANTINED = "product was quarantined from product.csv"
R_DUP_LABEL = "duplicate (query_id, product_id), same label (first kept)"
R_CONFLICT = "conflicting labels for the same (query_id, product_id)"


class _Sink:
    """Routes bad rows to a Quarantine (counting per file and reason) or, without one, raises
    an InputError naming the first bad row."""

    def __init__(self, quarantine: Quarantine | None, expectations: dict[str, str]) -> None:
        self.quarantine = quarantine
        self.counts: dict[str, int] = {}
        self.expectations = expectations

    def __call__(self, rows: pl.DataFrame, source: str, reason: str) -> None:
        if rows.height == 0:
            return
        if self.quarantine is None:
            raise InputError(
                reason,
                path=source,
                row=int(rows["row"][0]),
                expected=self.expectations.get(reason, "a usable row"),
            )
        self.quarantine.add(rows, source=source, reason=reason)
        key = f"{Path(source).name}: {reason}"
        self.counts[key] = self.counts.get(key, 0) + rows.height

    def ragged(self, table: CsvTable) -> int:
        self(table.ragged, table.path, MALFORMED)
        return table.ragged.height


def _read(path: str | Path, required: list[str], what: str) -> CsvTable:
    return read_delimited(
        path,
        required,
        what=what,
        delimiter="\t",
        fallback_encoding="utf-8",
        strict_quoting=False,
    )


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars().str.len_chars() == 0)


def _drop_bad(
    df: pl.DataFrame, sink: _Sink, source: str, checks: list[tuple[str, pl.Expr]]
) -> pl.DataFrame:
    for reason, bad in checks:
        mask = df.select(bad.fill_null(False).alias("m"))["m"]
        sink(df.filter(mask), source, reason)
        df = df.filter(~mask)
    return df


def _queries(table: CsvTable, sink: _Sink) -> tuple[pl.DataFrame, set[str]]:
    df = table.frame.with_columns(pl.col("query_id").str.strip_chars())
    if "query_class" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("query_class"))
    before = set(df["query_id"].to_list())
    df = _drop_bad(
        df,
        sink,
        table.path,
        [
            (R_EMPTY_QUERY_ID, _blank("query_id")),
            (R_EMPTY_QUERY, _blank("query")),
            (R_DUP_QUERY, ~pl.col("query_id").is_first_distinct()),
        ],
    )
    out = df.select(
        "row",
        pl.col("query_id").alias(QUERY_ID),
        pl.col("query").alias(TEXT),
        pl.when(_blank("query_class"))
        .then(None)
        .otherwise(pl.col("query_class"))
        .alias("query_class"),
    )
    return out, before - set(out[QUERY_ID].to_list())


def load_wands_queries(path: str | Path, *, quarantine: Quarantine | None = None) -> pl.DataFrame:
    """WANDS query.csv as queries (query_id, text, query_class), in file order.

    Without `quarantine`, the first unusable row (empty query, repeated query_id, wrong field
    count) raises an InputError naming it; with one, such rows are quarantined."""
    sink = _Sink(
        quarantine,
        {
            R_EMPTY_QUERY: "a non-empty query",
            R_DUP_QUERY: "one row per query_id",
            MALFORMED: f"{len(QUERY_COLUMNS)} tab-separated fields",
        },
    )
    table = _read(path, REQUIRED_QUERY_COLUMNS, "WANDS query.csv")
    sink.ragged(table)
    return _queries(table, sink)[0].drop("row")


def load_wands_products(path: str | Path, *, quarantine: Quarantine | None = None) -> pl.DataFrame:
    """WANDS product.csv as items (see the module docstring), in file order."""
    sink = _Sink(quarantine, {})
    return _products(_read(path, REQUIRED_PRODUCT_COLUMNS, "WANDS product.csv"), sink)[0]


def _products(table: CsvTable, sink: _Sink) -> tuple[pl.DataFrame, set[str]]:
    sink.ragged(table)
    df = table.frame.with_columns(pl.col("product_id").str.strip_chars())
    for col in PRODUCT_COLUMNS:
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    before = set(df["product_id"].to_list())
    df = _drop_bad(
        df,
        sink,
        table.path,
        [
            (R_EMPTY_PRODUCT_ID, _blank("product_id")),
            (R_EMPTY_NAME, _blank("product_name")),
            (R_DUP_PRODUCT, ~pl.col("product_id").is_first_distinct()),
        ],
    )
    text_extras = ["product_class", "category hierarchy", "product_description", "product_features"]
    items = df.select(
        pl.col("product_id").alias(ITEM_ID),
        pl.col("product_name").alias(TEXT),
        *[
            pl.when(_blank(c)).then(None).otherwise(pl.col(c)).alias(c.replace(" ", "_"))
            for c in text_extras
        ],
        *[
            pl.col(c).str.strip_chars().cast(pl.Float64, strict=False)
            for c in NUMERIC_PRODUCT_COLUMNS
        ],
    )
    return items, before - set(items[ITEM_ID].to_list())


def load_wands(
    product_path: str | Path,
    query_path: str | Path,
    label_path: str | Path,
    *,
    quarantine: Quarantine,
    label_grades: dict[str, float] | None = None,
) -> SearchDataset:
    """Load the three WANDS files into a SearchDataset (see the module docstring).

    Labels are matched case-insensitively after stripping; `label_grades` overrides the
    Exact 2 / Partial 1 / Irrelevant 0 scale."""
    grades = {k.strip().lower(): float(v) for k, v in (label_grades or LABEL_GRADES).items()}
    sink = _Sink(quarantine, {})
    items, dropped_products = _products(
        _read(product_path, REQUIRED_PRODUCT_COLUMNS, "WANDS product.csv"), sink
    )
    qtable = _read(query_path, REQUIRED_QUERY_COLUMNS, "WANDS query.csv")
    sink.ragged(qtable)
    queries, dropped_queries = _queries(qtable, sink)
    queries = queries.drop("row")

    ltable = _read(label_path, LABEL_COLUMNS, "WANDS label.csv")
    n_labels = ltable.frame.height + sink.ragged(ltable)
    df = ltable.frame.with_columns(
        pl.col("query_id").str.strip_chars(),
        pl.col("product_id").str.strip_chars(),
        pl.col("label")
        .str.strip_chars()
        .str.to_lowercase()
        .replace_strict(grades, default=None, return_dtype=pl.Float64)
        .alias("_grade"),
    )

    def ids(values: set[str] | pl.Series) -> pl.Expr:
        s = values if isinstance(values, pl.Series) else pl.Series(sorted(values), dtype=pl.String)
        return s.implode()

    df = _drop_bad(
        df,
        sink,
        ltable.path,
        [
            (R_BAD_LABEL, pl.col("_grade").is_null()),
            (R_QUERY_QUARANTINED, pl.col("query_id").is_in(ids(dropped_queries))),
            (R_UNKNOWN_QUERY, ~pl.col("query_id").is_in(ids(queries[QUERY_ID]))),
            (R_PRODUCT_QUARANTINED, pl.col("product_id").is_in(ids(dropped_products))),
            (R_UNKNOWN_PRODUCT, ~pl.col("product_id").is_in(ids(items[ITEM_ID]))),
        ],
    )
    key = ["query_id", "product_id"]
    df = _drop_bad(df, sink, ltable.path, [(R_CONFLICT, pl.col("_grade").n_unique().over(key) > 1)])
    df = _drop_bad(df, sink, ltable.path, [(R_DUP_LABEL, ~pl.struct(key).is_first_distinct())])
    qrels = df.select(
        pl.col("query_id").alias(QUERY_ID),
        pl.col("product_id").alias(ITEM_ID),
        pl.col("_grade").alias(GRADE),
    )
    stats = {
        "product_path": str(product_path),
        "query_path": str(query_path),
        "label_path": str(label_path),
        "label_rows": n_labels,
        "items": items.height,
        "queries": queries.height,
        "queries_without_labels": queries.filter(
            ~pl.col(QUERY_ID).is_in(qrels[QUERY_ID].implode())
        ).height,
        "qrels": qrels.height,
        "quarantined": dict(sorted(sink.counts.items())),
        "quarantined_total": sum(sink.counts.values()),
    }
    return SearchDataset(name="wands", items=items, queries=queries, qrels=qrels, stats=stats)


def load_wands_dir(directory: str | Path, *, quarantine: Quarantine) -> SearchDataset:
    """`load_wands` on product.csv, query.csv, label.csv (each optionally .gz) in `directory`."""
    d = Path(directory)
    paths = []
    for stem in ("product", "query", "label"):
        for candidate in (d / f"{stem}.csv", d / f"{stem}.csv.gz"):
            if candidate.is_file():
                paths.append(candidate)
                break
        else:
            raise InputError(
                "file not found", path=d / f"{stem}.csv[.gz]", expected=f"WANDS {stem}.csv in {d}"
            )
    return load_wands(*paths, quarantine=quarantine)
