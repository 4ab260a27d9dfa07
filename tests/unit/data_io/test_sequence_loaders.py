"""S3-Rec and UniSRec loaders on the shipped excerpts, the full files (when present) and small
malformed files."""

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from shelflab.data_io.sequences import (
    R_DUP_USER,
    R_EMPTY_SEQUENCE,
    R_NON_INTEGER,
    R_UNKNOWN_ITEM,
    load_s3rec,
    sequences_from_reviews,
)
from shelflab.data_io.unisrec import R_DISAGREES, R_NOT_IN_TEST, load_unisrec
from shelflab.errors import InputError
from shelflab.quarantine import Quarantine

SAMPLE = Path(__file__).parents[3] / "data" / "sample" / "sequences"


def test_s3rec_sample(beauty_sample):
    ds = beauty_sample
    assert ds.stats["users"] == 2317 and ds.stats["interactions"] == 20174
    assert ds.stats["quarantined"] == {}
    first = ds.sequences.row(0, named=True)
    # the first kept line of Beauty.sample.txt, as written
    line = gzip.decompress((SAMPLE / "Beauty.sample.txt.gz").read_bytes()).split(b"\n")[0].split()
    assert first == {"user_id": line[0].decode(), "items": [t.decode() for t in line[1:]]}
    # item text = attribute names in file order, e.g. item 4 of Beauty: [1, 2, 3]
    assert ds.items.filter(item_id="4")["text"].item() == "COKA, Makeup, Face"
    assert ds.items.height == 7812 and (ds.items["text"] != "").all()


def write_gz(path, text):
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_s3rec_bad_lines_are_quarantined_with_reasons(tmp_path):
    seqs = write_gz(tmp_path / "x.txt.gz", "1 1 2 3\n\n2 4 x 5\n3\n1 2 3\n4 1 9\n5 2 3 1\n")
    maps = tmp_path / "maps.json"
    maps.write_text(json.dumps({"id2item": {str(i): f"A{i}" for i in range(1, 6)}}))
    q = Quarantine()
    ds = load_s3rec(seqs, datamaps=maps, quarantine=q)
    assert ds.sequences["user_id"].to_list() == ["1", "5"]
    assert ds.sequences["items"].to_list() == [["1", "2", "3"], ["2", "3", "1"]]
    assert q.counts() == {R_DUP_USER: 1, R_EMPTY_SEQUENCE: 1, R_NON_INTEGER: 1, R_UNKNOWN_ITEM: 1}
    table = q.table().sort("row")
    assert table["row"].to_list() == [3, 4, 5, 6]  # physical lines; line 2 is blank
    assert json.loads(table["record"][0]) == {"line": "2 4 x 5"}
    assert ds.stats["blank_lines"] == 1
    assert ds.items["item_id"].to_list() == ["1", "2", "3", "4", "5"]  # the datamaps catalog
    assert ds.items["text"].to_list() == [""] * 5  # no attributes file


def test_s3rec_unusable_file_names_it(tmp_path):
    bad = write_gz(tmp_path / "bad.txt.gz", "a b c\n7\n")
    q = Quarantine()
    with pytest.raises(InputError, match=r"bad\.txt\.gz.*no usable sequence.*non-integer token: 1"):
        load_s3rec(bad, quarantine=q)
    assert q.counts() == {}  # nothing half-written into the quarantine
    with pytest.raises(InputError, match="S3-Rec sequence file"):
        load_s3rec(tmp_path / "missing.txt", quarantine=q)


def test_unisrec_sample_reproduces_the_files_split():
    from shelflab.protocols.leave_one_out import leave_one_out

    q = Quarantine()
    ds = load_unisrec(SAMPLE, "Scientific.sample", quarantine=q)
    assert ds.stats["users"] == 889 and q.counts() == {}
    task = leave_one_out(ds.sequences)
    for split in ("valid", "test"):
        rows = gzip.decompress((SAMPLE / f"Scientific.sample.{split}.inter.gz").read_bytes())
        expected = {}
        for line in rows.decode().splitlines()[1:]:
            user, hist, target = line.split("\t")
            expected[user] = (hist.split(), target)
        queries, qrels = task.part(split)
        got = {
            u: (h[-50:], t)
            for u, h, t in queries.join(qrels, on="query_id")
            .select("user_id", "history", "item_id")
            .iter_rows()
        }
        assert got == expected, split
    assert ds.items.filter(item_id="0")["text"].item().startswith("eSUN Bronze filament")


def test_unisrec_full_scientific(data_dir):
    folder = data_dir / "amazon-2018-scientific-unisrec"
    q = Quarantine()
    ds = load_unisrec(folder, "Scientific", quarantine=q)
    # 50,985 rows (one per prefix) + one first item per user; three users have histories
    # longer than the files' 50-item window
    assert (ds.stats["users"], ds.stats["interactions"], ds.stats["items"]) == (8442, 59427, 4385)
    assert q.counts() == {} and ds.sequences["items"].list.len().max() == 80


def test_unisrec_rows_that_disagree(tmp_path):
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    write_gz(tmp_path / "d.test.inter.gz", header + "0\t0 1 2\t3\n1\t0 4\t5\n2\t1 2\t9\n")
    write_gz(tmp_path / "d.valid.inter.gz", header + "0\t0 1\t2\n1\t0\t1\n7\t0\t1\n2\t1\t2\n")
    write_gz(tmp_path / "d.train.inter.gz", header + "0\t0\t1\n1\tx\t4\n")
    write_gz(tmp_path / "d.item2index.gz", "".join(f"A{i}\t{i}\n" for i in range(6)))
    write_gz(tmp_path / "d.text.gz", "item_id:token\ttext:token_seq\nA0\tfirst item\n")
    q = Quarantine()
    ds = load_unisrec(tmp_path, "d", quarantine=q)
    assert dict(ds.sequences.iter_rows()) == {"0": ["0", "1", "2", "3"], "1": ["0", "4", "5"]}
    assert q.counts() == {R_DISAGREES: 1, R_NON_INTEGER: 1, R_NOT_IN_TEST: 1, R_UNKNOWN_ITEM: 2}
    by_reason = {r: (s, row) for s, row, r in q.table().select("source", "row", "reason").rows()}
    assert by_reason[R_DISAGREES][0].endswith("d.valid.inter.gz") and by_reason[R_DISAGREES][1] == 3
    assert ds.items.row(0) == ("0", "first item", []) and ds.items.height == 6


def test_sequences_from_reviews_time_order_and_k_core():
    import polars as pl

    # user u3 and item d fall below 2 interactions; removing d leaves u2 with one item
    reviews = pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2", "u2", "u3", "u1"],
            "item_id": ["b", "a", "c", "a", "d", "c", "b"],
            "timestamp": [20, 10, 30, 5, 6, 1, 40],
            "row": [1, 2, 3, 4, 5, 6, 7],
        }
    )
    ds, removed = sequences_from_reviews(reviews, k_core=2)
    assert removed == {"repeated user-item": 1, "k-core filter": 6}
    assert ds.sequences.height == 0  # everything unravels: a 2-core needs 2 of each
    ds, removed = sequences_from_reviews(reviews, k_core=1)
    assert dict(ds.sequences.iter_rows()) == {"u1": ["a", "b", "c"], "u2": ["a", "d"], "u3": ["c"]}
    assert removed == {"repeated user-item": 1, "k-core filter": 0}


def test_sequences_from_reviews_keep_each_items_rating():
    # u1 reviews b twice: the first review (rating 2) is the one kept, like its place in time
    reviews = pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1", "u2"],
            "item_id": ["b", "a", "c", "b", "a"],
            "timestamp": [20, 10, 30, 40, 5],
            "row": [1, 2, 3, 4, 5],
            "rating": [2.0, 5.0, 4.0, 1.0, 3.0],
        }
    )
    ds, _ = sequences_from_reviews(reviews, k_core=1)
    assert ds.sequences.rows() == [("u1", ["a", "b", "c"], [5.0, 2.0, 4.0]), ("u2", ["a"], [3.0])]
    assert ds.sequences.schema["ratings"] == pl.List(pl.Float64)


def test_sequences_from_real_reviews(data_dir):
    from shelflab.data_io.amazon import load_reviews

    reviews = load_reviews(
        data_dir / "amazon-2018-5core" / "All_Beauty_5.json.gz", quarantine=Quarantine()
    )
    ds, removed = sequences_from_reviews(reviews, k_core=5)
    counts = ds.sequences["items"].list.len()
    assert counts.min() >= 5
    item_counts = ds.sequences["items"].explode().value_counts()
    assert item_counts["count"].min() >= 5
    assert removed["k-core filter"] > 0 and ds.stats["users"] == ds.sequences.height
    assert (ds.sequences["items"].list.len() == ds.sequences["ratings"].list.len()).all()
    assert set(ds.sequences["ratings"].explode().unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_catalogs_keep_their_items_attributes(beauty_sample):
    # S3-Rec: the attribute names of item2attributes (brands and categories); the item text is
    # the same names joined
    with_attrs = beauty_sample.items.filter(pl.col("attributes").list.len() > 0)
    assert with_attrs.height > 0.9 * beauty_sample.items.height
    for text, attrs in with_attrs.select("text", "attributes").head(50).iter_rows():
        assert text == ", ".join(attrs)


@pytest.mark.parametrize(
    ("text", "attributes"),
    [
        ("Gorilla Glue, 8 ounce. Industrial & Scientific Tapes Adhesives. Gorilla. ",
         ["Industrial & Scientific Tapes Adhesives", "Gorilla"]),
        ("Dr. Who Mug. Kitchen Mugs. Acme.", ["Kitchen Mugs", "Acme"]),  # a '. ' in the title
        ("Only a title", []),
        ("", []),
    ],
)  # fmt: skip
def test_unisrec_text_attributes(text, attributes):
    from shelflab.data_io.unisrec import text_attributes

    assert text_attributes(text) == attributes
