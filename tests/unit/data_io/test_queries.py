import pytest

from shelflab.data_io.queries import read_queries
from shelflab.errors import InputError


def test_reads_tsv(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("n1\tcordless drill\nn2\tl bracket\n")
    df = read_queries(path)
    assert df.rows() == [("n1", "cordless drill"), ("n2", "l bracket")]


def test_comma_file_gets_clear_error(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("query_id,text\n1,drill\n")
    with pytest.raises(InputError) as err:
        read_queries(path)
    assert f"{path}, row 1" in str(err.value) and "query_id<TAB>text" in str(err.value)


def test_empty_text_and_missing_file(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("n1\tdrill\nn2\t \n")
    with pytest.raises(InputError, match="row 2: empty query text"):
        read_queries(path)
    with pytest.raises(InputError, match="file not found"):
        read_queries(tmp_path / "missing.tsv")


def test_non_utf8_names_row(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_bytes(b"n1\tdrill\nn2\t30\xb0 angle\n")
    with pytest.raises(InputError, match=r"row 2: not valid UTF-8"):
        read_queries(path)


def test_byte_order_mark_is_stripped(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_bytes("\ufeff".encode() + b"q1\tdrill\nq2\tsaw\n")
    assert read_queries(path)["query_id"].to_list() == ["q1", "q2"]
