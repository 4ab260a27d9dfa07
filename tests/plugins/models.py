"""Shared real-data fixtures: ~2,000 Home Depot products and the real search terms judged
against them. The dense encoder runs over the catalog once per session (session-scoped
index + embedding cache)."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
from pathlib import Path

import polars as pl
import pytest

from shelflab.contract import ITEM_ID, QUERY_ID, RANK, SCORE, TEXT, validate_run
from shelflab.models import ModelContext, create, load, open_model

N_ITEMS = 2000
N_QUERIES = 300  # a hash-ordered sample of the ~1,500 judged search terms (encoding cost)


def read_latin1_csv(path: Path) -> pl.DataFrame:
    # polars' own encoding="latin-1" path mis-splits this file; decode first
    with gzip.open(path) as f:
        raw = f.read().decode("latin-1")
    return pl.read_csv(io.StringIO(raw), schema_overrides={"product_uid": pl.String})


@pytest.fixture(scope="session")
def hd_dir(data_dir: Path) -> Path:
    path = data_dir / "home-depot-search-relevance"
    if not (path / "products.csv.gz").exists():
        pytest.skip(f"Home Depot data not found under {path}")
    return path


@pytest.fixture(scope="session")
def items(hd_dir: Path) -> pl.DataFrame:
    products = read_latin1_csv(hd_dir / "products.csv.gz").head(N_ITEMS)
    return products.select(
        pl.col("product_uid").alias(ITEM_ID), pl.col("product_title").alias(TEXT)
    )


@pytest.fixture(scope="session")
def judged(hd_dir: Path, items: pl.DataFrame) -> pl.DataFrame:
    """(query_id, text, item_id, grade) for real search terms judged on subset products."""
    train = read_latin1_csv(hd_dir / "train.csv.gz").filter(
        pl.col("product_uid").is_in(items[ITEM_ID].implode())
    )
    return train.select(
        pl.col("search_term")
        .map_elements(lambda s: "q" + hashlib.sha1(s.encode()).hexdigest()[:10], pl.String)
        .alias(QUERY_ID),
        pl.col("search_term").alias(TEXT),
        pl.col("product_uid").alias(ITEM_ID),
        pl.col("relevance").alias("grade"),
    )


@pytest.fixture(scope="session")
def queries(judged: pl.DataFrame) -> pl.DataFrame:
    distinct = judged.select(QUERY_ID, TEXT).unique(QUERY_ID, keep="first").sort(QUERY_ID)
    return distinct.head(N_QUERIES)


@pytest.fixture(scope="session")
def title_queries(items: pl.DataFrame) -> pl.DataFrame:
    """Queries that copy a product title verbatim (distinct titles only)."""
    uniq = items.filter(pl.col(TEXT).is_unique())
    picked = uniq.gather([0, 37, 211, 777, 1500, uniq.height - 1])
    return picked.select(("t" + pl.col(ITEM_ID)).alias(QUERY_ID), TEXT, ITEM_ID)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def ctx(cache_dir: Path) -> ModelContext:
    return ModelContext(cache_dir=cache_dir)


def build(name: str, spec: dict, ctx: ModelContext, items: pl.DataFrame, root: Path):
    """create -> save -> build_index, like the train@/index@ stages; returns dirs + model."""
    model = create(name, spec, ctx)
    model_dir, index_dir = root / "model", root / "index"
    model_dir.mkdir(parents=True)
    index_dir.mkdir(parents=True)
    model.save(model_dir)
    model.build_index(items, index_dir)
    return model_dir, index_dir, model


def save_and_open(model, ctx: ModelContext, items: pl.DataFrame, root: Path):
    """save a fitted model, load it afresh, build its index and open it, like the
    train@ -> index@ -> evaluate@ stages; returns (opened model, model_dir, index_dir)."""
    model_dir, index_dir = root / "model", root / "index"
    model_dir.mkdir(parents=True)
    index_dir.mkdir(parents=True)
    model.save(model_dir)
    load(model_dir, ctx).build_index(items, index_dir)
    return open_model(model_dir, index_dir, ctx), model_dir, index_dir


def refuses_unlabelled(model, train, items: pl.DataFrame) -> None:
    """A trainer refuses train qrels with no positive grade, and a valid split that has no
    judged relevant query (no valid qrels, or only grade 0), before training anything."""
    from shelflab.errors import InputError
    from shelflab.models import TrainData

    zero = train.train_qrels.with_columns(pl.lit(0.0).alias("grade"))
    with pytest.raises(InputError, match="training split has no positive"):
        model.fit(TrainData(items, train.train_queries, zero))
    for valid in (
        train.valid_qrels.head(0),
        train.valid_qrels.with_columns(pl.lit(0.0).alias("grade")),
    ):
        with pytest.raises(InputError, match="valid split has no positive"):
            model.fit(
                TrainData(items, train.train_queries, train.train_qrels, train.valid_queries, valid)
            )


@pytest.fixture(scope="session")
def refuses():
    """refuses_unlabelled as a fixture: refuses(model, train, items)."""
    return refuses_unlabelled


@pytest.fixture(scope="session")
def reopen():
    """save_and_open as a fixture: reopen(model, ctx, items, root)."""
    return save_and_open


@pytest.fixture(scope="session")
def bm25_dirs(tmp_path_factory, ctx, items):
    return build("bm25", {"family": "bm25"}, ctx, items, tmp_path_factory.mktemp("bm25"))


@pytest.fixture(scope="session")
def dense_dirs(tmp_path_factory, ctx, items):
    return build("dense", {"family": "dense"}, ctx, items, tmp_path_factory.mktemp("dense"))


@pytest.fixture(scope="session")
def dense(dense_dirs, ctx):
    model_dir, index_dir, _ = dense_dirs
    model = open_model(model_dir, index_dir, ctx)
    yield model
    model.close()


def _check_run(run: pl.DataFrame, k: int) -> None:
    """Contract: validate_run passes, ranks 1..n per query (n <= k), scores descending."""
    validated = validate_run(run)
    assert validated.columns[:4] == [QUERY_ID, ITEM_ID, SCORE, RANK]
    per_query = run.group_by(QUERY_ID).agg(
        pl.col(RANK).sort().alias("ranks"),
        pl.col(SCORE).sort_by(RANK).alias("scores"),
        pl.len().alias("n"),
    )
    for row in per_query.iter_rows(named=True):
        assert row["n"] <= k
        assert row["ranks"] == list(range(1, row["n"] + 1))
        scores = row["scores"]
        assert all(a >= b for a, b in itertools.pairwise(scores))


@pytest.fixture(scope="session")
def check_run():
    return _check_run


def make_train_data(
    judged: pl.DataFrame,
    queries: pl.DataFrame,
    items: pl.DataFrame,
    train: slice = slice(0, 200),
    valid: slice = slice(200, 250),
    test: slice = slice(250, None),
):
    """(TrainData, test queries) from the judged subset: Home Depot grades 1..3 -> 0..2 (the
    pipeline's default mapping), queries split by sorted id."""
    from shelflab.models import TrainData

    qs = queries.sort(QUERY_ID)
    qrels = judged.select(QUERY_ID, ITEM_ID, (pl.col("grade") - 1.0).alias("grade"))
    qrels = qrels.unique([QUERY_ID, ITEM_ID], keep="first", maintain_order=True)

    def judged_for(q: pl.DataFrame) -> pl.DataFrame:
        return qrels.filter(pl.col(QUERY_ID).is_in(q[QUERY_ID].implode()))

    train_q, valid_q = qs[train], qs[valid]
    data = TrainData(items, train_q, judged_for(train_q), valid_q, judged_for(valid_q))
    return data, qs[test]


@pytest.fixture(scope="session")
def split_judged(judged, queries, items):
    """make_train_data bound to the session's judged subset: split_judged(train, valid, test)."""

    def make(*slices: slice):
        return make_train_data(judged, queries, items, *slices)

    return make
