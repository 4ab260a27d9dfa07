"""Real judgments for the agreement tests: Home Depot search relevance (Kaggle).

train.csv.gz has one row per judged (search_term, product): relevance 1..3 (averaged over
raters, so 1.33, 2.67 ... occur). Query = distinct search term, grade = relevance - 1 (float,
0..2). Runs come from a deterministic lexical scorer over all product titles
(products.csv.gz): a title is a candidate when it shares a non-stopword token with the search
term; `overlap` scores = number of shared distinct tokens (integers: many ties), `idf` scores =
sum of the shared tokens' idf (floats on a 1/1024 grid, so deterministic and exact in float32:
trec_eval keeps scores as C floats). Top 100 per query.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import polars as pl
import pytest

DATASET = "home-depot-search-relevance"
TOKEN = r"[a-z0-9]+"
MAX_DF = 2500  # tokens in more titles than this ("in", "x", "with", ...) create no candidates
DEPTH = 100


def _read_latin1_csv(path: Path) -> pl.DataFrame:
    with gzip.open(path) as fh:
        text = fh.read().decode("latin-1")
    return pl.read_csv(io.StringIO(text), infer_schema=False)


@pytest.fixture(scope="session")
def home_depot(data_dir: Path) -> dict[str, pl.DataFrame]:
    """train (query_id, search_term, item_id, relevance str), products (item_id, title) and
    terms (search_term, query_id = 'hd' + index of the term in sorted order)."""
    root = data_dir / DATASET
    if not (root / "train.csv.gz").exists():
        pytest.skip(f"{DATASET} not found under {data_dir} (set SHELFLAB_DATA_DIR)")
    train = _read_latin1_csv(root / "train.csv.gz")
    products = _read_latin1_csv(root / "products.csv.gz")
    terms = train.select("search_term").unique().sort("search_term")
    terms = terms.with_columns(
        pl.format("hd{}", pl.int_range(pl.len()).cast(pl.String).str.zfill(5)).alias("query_id")
    )
    train = train.join(terms, on="search_term").select(
        "query_id", "search_term", pl.col("product_uid").alias("item_id"), "relevance"
    )
    products = products.select(pl.col("product_uid").alias("item_id"), pl.col("product_title"))
    return {"train": train, "products": products, "terms": terms}


def lexical_runs(terms: pl.DataFrame, products: pl.DataFrame, depth: int = DEPTH) -> pl.DataFrame:
    """query_id, item_id, overlap, idf for the top `depth` titles of each search term by idf
    (then overlap, then item_id descending): a deterministic token-overlap scorer."""
    n_docs = products.height
    doc_tokens = (
        products.select(
            "item_id", pl.col("product_title").str.to_lowercase().str.extract_all(TOKEN)
        )
        .explode("product_title")
        .drop_nulls()
        .unique()
        .rename({"product_title": "token"})
    )
    df = doc_tokens.group_by("token").len("df")
    # idf on a 1/1024 grid: sums are exact whatever the summation order (deterministic) and
    # exact in float32, the precision trec_eval keeps scores in
    idf = df.with_columns(
        ((pl.lit(float(n_docs)) / pl.col("df")).log() * 1024).round().truediv(1024).alias("idf")
    )
    query_tokens = (
        terms.select("query_id", pl.col("search_term").str.to_lowercase().str.extract_all(TOKEN))
        .explode("search_term")
        .drop_nulls()
        .unique()
        .rename({"search_term": "token"})
        .join(idf.filter(pl.col("df") <= MAX_DF), on="token")
    )
    scored = (
        query_tokens.join(doc_tokens, on="token")
        .group_by("query_id", "item_id")
        .agg(pl.len().cast(pl.Float64).alias("overlap"), pl.col("idf").sum().alias("idf"))
    )
    return (
        scored.sort(["query_id", "idf", "overlap", "item_id"], descending=[False, True, True, True])
        .group_by("query_id", maintain_order=True)
        .head(depth)
    )


@pytest.fixture(scope="session")
def hd_sample(home_depot: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """~300 queries (every 30th distinct search term): float-graded qrels and two runs."""
    terms = home_depot["terms"].gather_every(30)
    train = home_depot["train"].join(terms.select("query_id"), on="query_id")
    qrels = train.select(
        "query_id", "item_id", (pl.col("relevance").cast(pl.Float64) - 1.0).alias("grade")
    )
    runs = lexical_runs(terms, home_depot["products"])
    return {
        "qrels": qrels,
        "run_idf": runs.select("query_id", "item_id", pl.col("idf").alias("score")),
        "run_overlap": runs.select("query_id", "item_id", pl.col("overlap").alias("score")),
        "terms": terms,
    }
