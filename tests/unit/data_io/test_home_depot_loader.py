"""Home Depot loader: the shipped sample, the real full files, and one test per bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from shelflab.data_io.csvutil import MALFORMED
from shelflab.data_io.dataset import stable_id
from shelflab.data_io.home_depot import (
    R_CONFLICT,
    R_DUP_PAIR,
    R_EMPTY_TERM,
    R_EMPTY_TITLE,
    R_PRODUCT_QUARANTINED,
    R_RELEVANCE_NAN,
    R_RELEVANCE_RANGE,
    R_UNKNOWN_PRODUCT,
    load_home_depot,
    load_home_depot_dir,
)
from shelflab.errors import ConfigError, InputError
from shelflab.quarantine import Quarantine

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "sample"
TRAIN_HEADER = '"id","product_uid","product_title","search_term","relevance"'
PRODUCTS_HEADER = '"product_uid","product_title"'
CATALOG = [
    (100001, "Simpson Strong-Tie 12-Gauge Angle"),
    (100002, "BEHR Premium Textured DeckOver 1-gal. #SC-141 Tugboat Wood and Concrete Coating"),
    (100005, "Delta Vero 1-Handle Shower Only Faucet Trim Kit in Chrome (Valve Not Included)"),
]


def _train_line(i: int, uid: int | str, term: str, rel: str) -> str:
    title = dict(CATALOG).get(uid, "Some Title")
    return f'{i},{uid},"{title}","{term}",{rel}'


def write_hd(
    tmp_path: Path,
    train_lines: list[str],
    products: list[tuple[int | str, str]] = CATALOG,
    *,
    encoding: str = "latin-1",
    bom: bool = False,
    train_header: str = TRAIN_HEADER,
) -> tuple[Path, Path]:
    train = tmp_path / "train.csv"
    prods = tmp_path / "products.csv"
    prefix = b"\xef\xbb\xbf" if bom else b""
    train.write_bytes(prefix + ("\n".join([train_header, *train_lines]) + "\n").encode(encoding))
    body = "\n".join([PRODUCTS_HEADER, *(f'{u},"{t}"' for u, t in products)]) + "\n"
    prods.write_bytes(prefix + body.encode(encoding))
    return train, prods


def good_lines() -> list[str]:
    return [
        _train_line(3, 100001, "l bracket", "2.5"),
        _train_line(16, 100005, "rain shower head", "2.33"),
        _train_line(17, 100005, "shower only faucet", "2.67"),
        _train_line(18, 100002, "deck over", "3"),
    ]


def one_line(err: pytest.ExceptionInfo[InputError]) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def q_rows(q: Quarantine, reason: str) -> list[int]:
    t = q.table().filter(pl.col("reason") == reason)
    return sorted(t["row"].to_list())


# --- the shipped sample ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    q = Quarantine()
    return load_home_depot_dir(SAMPLE, quarantine=q), q


def test_sample_loads_clean(sample):
    ds, q = sample
    assert ds.summary() == {"items": 6204, "queries": 500, "qrels": 3079}
    assert q.counts() == {}
    assert ds.stats["quarantined_total"] == 0
    assert ds.stats["encoding"] == {"train": "latin-1", "products": "latin-1"}
    ds.validate()
    assert ds.qrels.schema == pl.Schema(
        {"query_id": pl.String, "item_id": pl.String, "grade": pl.Float64}
    )
    assert set(ds.items.columns) >= {"item_id", "text", "title"}
    grades = ds.qrels["grade"]
    assert grades.min() >= 0 and grades.max() <= 2


def test_query_ids_are_sha1_of_the_raw_term(sample):
    ds, _ = sample
    for qid, text in ds.queries.head(20).iter_rows():
        assert qid == stable_id("hd-", text)
        assert len(qid) == 3 + 12
    assert ds.queries["query_id"].n_unique() == ds.queries.height


def test_sample_keeps_mojibake_raw(sample):
    ds, _ = sample
    titles = ds.items["text"]
    assert titles.str.contains("å¡", literal=True).any()  # raw: repair is textnorm's job
    assert titles.str.contains("&amp;", literal=True).any()


# --- the real full files --------------------------------------------------------------------


@pytest.fixture(scope="module")
def full(data_dir):
    q = Quarantine()
    return load_home_depot_dir(data_dir / "home-depot-search-relevance", quarantine=q), q


def test_full_files_counts(full):
    ds, q = full
    assert ds.qrels.height == 59_277
    assert ds.queries.height == 9_436
    assert ds.items.height == 54_667
    assert ds.stats["train_rows"] == 59_277
    assert ds.stats["product_rows"] == 54_667
    assert q.counts() == {}  # the real files have no unusable row
    assert ds.stats["train_title_differs"] == 18
    assert ds.stats["encoding"] == {"train": "latin-1", "products": "latin-1"}
    ds.validate()
    # labels: 1 .. 3 -> 0 .. 2, only 1,708 of them at 1.0 (grade 0)
    assert ds.qrels.filter(pl.col("grade") == 0).height == 1_708
    assert ds.qrels.filter(pl.col("grade") == 2).height == 15_244


def test_query_ids_stable_between_sample_and_full(sample, full):
    small, _ = sample
    big, _ = full
    joined = small.queries.join(big.queries, on="query_id", how="left", suffix="_full")
    assert joined["text_full"].null_count() == 0
    assert (joined["text"] == joined["text_full"]).all()
    # the sample's judged pairs are the full file's pairs, same grades
    merged = small.qrels.join(big.qrels, on=["query_id", "item_id"], how="left")
    assert (merged["grade"] == merged["grade_right"]).all()


# --- grade mappings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ("minus_one", [1.5, 1.33, 1.67, 2.0]),
        ("identity", [2.5, 2.33, 2.67, 3.0]),
        ("round", [2.0, 1.0, 2.0, 2.0]),
    ],
)
def test_grade_mappings(tmp_path, mapping, expected):
    train, prods = write_hd(tmp_path, good_lines())
    ds = load_home_depot(train, prods, mapping, quarantine=Quarantine())
    assert ds.qrels["grade"].to_list() == expected


def test_unknown_grade_mapping(tmp_path):
    train, prods = write_hd(tmp_path, good_lines())
    with pytest.raises(ConfigError, match=r"unknown grade_mapping 'floor'.*minus_one"):
        load_home_depot(train, prods, "floor", quarantine=Quarantine())


# --- bad inputs: raised (one line naming file, row, expectation) ----------------------------


def test_missing_file(tmp_path):
    _, prods = write_hd(tmp_path, good_lines())
    missing = tmp_path / "nope" / "train.csv"
    with pytest.raises(InputError) as err:
        load_home_depot(missing, prods, quarantine=Quarantine())
    msg = one_line(err)
    assert str(missing) in msg and "file not found" in msg


def test_tab_delimited_file(tmp_path):
    lines = [line.replace(",", "\t") for line in good_lines()]
    train, prods = write_hd(tmp_path, lines, train_header=TRAIN_HEADER.replace(",", "\t"))
    with pytest.raises(InputError) as err:
        load_home_depot(train, prods, quarantine=Quarantine())
    msg = one_line(err)
    assert msg.startswith(f"{train}, row 1: header is tab-separated")
    assert (
        "expected a comma CSV with columns id, product_uid, product_title, search_term, "
        "relevance" in msg
    )


def test_missing_column(tmp_path):
    header = '"id","product_uid","product_title","search_term"'
    lines = [line.rsplit(",", 1)[0] for line in good_lines()]
    train, prods = write_hd(tmp_path, lines, train_header=header)
    with pytest.raises(InputError) as err:
        load_home_depot(train, prods, quarantine=Quarantine())
    msg = one_line(err)
    assert f"{train}, row 1: missing column(s) relevance" in msg
    assert "expected a comma CSV with columns" in msg


def test_broken_quoting(tmp_path):
    lines = [*good_lines(), '19,100001,"Simpson "Strong" Angle","x",2']
    train, prods = write_hd(tmp_path, lines)
    with pytest.raises(InputError) as err:
        load_home_depot(train, prods, quarantine=Quarantine())
    assert one_line(err).startswith(f"{train}, row 6: malformed quoting")


def test_empty_file(tmp_path):
    train, prods = write_hd(tmp_path, good_lines())
    train.write_bytes(b"")
    with pytest.raises(InputError, match="file is empty"):
        load_home_depot(train, prods, quarantine=Quarantine())


# --- bad rows: quarantined with their row number --------------------------------------------


def test_empty_search_term(tmp_path):
    lines = [*good_lines(), _train_line(20, 100001, "  ", "2")]
    train, prods = write_hd(tmp_path, lines)
    q = Quarantine()
    ds = load_home_depot(train, prods, quarantine=q)
    assert q_rows(q, R_EMPTY_TERM) == [6]
    assert ds.qrels.height == 4
    assert ds.stats["quarantined"] == {f"train.csv: {R_EMPTY_TERM}": 1}
    rec = json.loads(q.table()["record"][0])
    assert rec["id"] == "20" and rec["search_term"] == "  "
    assert q.table()["source"][0] == str(train)


def test_bad_relevance(tmp_path):
    lines = [
        *good_lines(),
        _train_line(20, 100001, "angle", "high"),  # row 6: not a number
        _train_line(21, 100001, "angle bracket", "4"),  # row 7: above 3
        _train_line(22, 100002, "deck paint", "0.5"),  # row 8: below 1
        _train_line(23, 100002, "deck stain", ""),  # row 9: empty
        _train_line(24, 100002, "deck coat", "nan"),  # row 10: NaN
    ]
    train, prods = write_hd(tmp_path, lines)
    q = Quarantine()
    ds = load_home_depot(train, prods, quarantine=q)
    assert q_rows(q, R_RELEVANCE_NAN) == [6, 9, 10]
    assert q_rows(q, R_RELEVANCE_RANGE) == [7, 8]
    assert q.counts() == {R_RELEVANCE_NAN: 3, R_RELEVANCE_RANGE: 2}
    assert ds.qrels.height == 4 and ds.queries.height == 4


def test_unknown_product(tmp_path):
    lines = [*good_lines(), _train_line(20, 999999, "ghost", "2")]
    train, prods = write_hd(tmp_path, lines)
    q = Quarantine()
    ds = load_home_depot(train, prods, quarantine=q)
    assert q_rows(q, R_UNKNOWN_PRODUCT) == [6]
    assert "999999" not in ds.qrels["item_id"].to_list()
    assert "ghost" not in ds.queries["text"].to_list()  # its only pair is out: no query


def test_conflicting_and_identical_duplicates(tmp_path):
    lines = [
        *good_lines(),
        _train_line(20, 100001, "l bracket", "1.67"),  # row 6: conflicts with row 2 (2.5)
        _train_line(21, 100002, "deck over", "3"),  # row 7: repeats row 5 exactly
    ]
    train, prods = write_hd(tmp_path, lines)
    q = Quarantine()
    ds = load_home_depot(train, prods, quarantine=q)
    assert q_rows(q, R_CONFLICT) == [2, 6]  # both rows of the conflicting pair
    assert q_rows(q, R_DUP_PAIR) == [7]  # the repeat; row 5 is kept
    assert ds.qrels.height == 3
    assert "l bracket" not in ds.queries["text"].to_list()
    assert ds.stats["quarantined_total"] == 3
    ds.validate()


def test_catalog_problems(tmp_path):
    products = [*CATALOG, (100009, " "), (100001, "A second title for 100001")]
    lines = [*good_lines(), _train_line(20, 100009, "untitled", "2")]
    train, prods = write_hd(tmp_path, lines, products)
    q = Quarantine()
    ds = load_home_depot(train, prods, quarantine=q)
    assert q_rows(q, R_EMPTY_TITLE) == [5]
    assert q_rows(q, "duplicate product_uid in catalog (first kept)") == [6]
    assert q_rows(q, R_PRODUCT_QUARANTINED) == [6]  # the train row judging 100009
    assert ds.items.height == 3
    assert ds.items.filter(pl.col("item_id") == "100001")["text"][0] == CATALOG[0][1]


def test_ragged_row_is_quarantined(tmp_path):
    lines = [*good_lines(), '20,100001,"Simpson Strong-Tie 12-Gauge Angle","angle"']
    train, prods = write_hd(tmp_path, lines)
    q = Quarantine()
    ds = load_home_depot(train, prods, quarantine=q)
    assert q_rows(q, MALFORMED) == [6]
    assert ds.qrels.height == 4


# --- encodings and compression ---------------------------------------------------------------


def test_latin1_bytes(tmp_path):
    products = [*CATALOG, (100010, "Defiant 180å¡ White Outdoor Motion Sensing Light")]
    lines = [*good_lines(), _train_line(20, 100010, "motion light", "3")]
    train, prods = write_hd(tmp_path, lines, products, encoding="latin-1")
    assert b"\xe5\xa1" in prods.read_bytes()
    ds = load_home_depot(train, prods, quarantine=Quarantine())
    assert ds.stats["encoding"]["products"] == "latin-1"
    assert "180å¡ White" in ds.items["text"][3]


@pytest.mark.parametrize("bom", [True, False])
def test_utf8_files_are_decoded_as_utf8(tmp_path, bom):
    products = [*CATALOG, (100010, "Defiant 180° White Outdoor Light – Connect™")]
    lines = [*good_lines(), _train_line(20, 100010, "180° light", "3")]
    train, prods = write_hd(tmp_path, lines, products, encoding="utf-8", bom=bom)
    ds = load_home_depot(train, prods, quarantine=Quarantine())
    enc = "utf-8-sig" if bom else "utf-8"
    assert ds.stats["encoding"] == {"train": enc, "products": enc}
    assert ds.items["text"][3] == "Defiant 180° White Outdoor Light – Connect™"
    assert "180° light" in ds.queries["text"].to_list()
    assert ds.items["item_id"][0] == "100001"  # the BOM is not glued to the first id


def test_gzip_detected_from_bytes(tmp_path):
    train, prods = write_hd(tmp_path, good_lines())
    gz = tmp_path / "train_compressed.csv"  # gzip content, no .gz suffix
    gz.write_bytes(gzip.compress(train.read_bytes()))
    ds = load_home_depot(gz, prods, quarantine=Quarantine())
    assert ds.qrels.height == 4


def test_find_files_in_directory(tmp_path):
    with pytest.raises(InputError, match=r"train\.csv"):
        load_home_depot_dir(tmp_path, quarantine=Quarantine())
