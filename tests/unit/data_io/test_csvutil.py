"""Reading helpers: decoding, gzip detection, row numbering, ragged records."""

from __future__ import annotations

import gzip

import pytest

from shelflab.data_io.csvutil import decode, read_bytes, read_delimited
from shelflab.errors import InputError


def test_decode_bom_utf8_latin1():
    assert decode(b"\xef\xbb\xbfid,x\n", "f") == ("id,x\n", "utf-8-sig")
    assert decode("30° angle".encode(), "f") == ("30° angle", "utf-8")
    assert decode(b"plain ascii", "f") == ("plain ascii", "utf-8")
    assert decode(b"30\xe5\xa1 angle", "f") == ("30å¡ angle", "latin-1")


def test_decode_strict_utf8_names_the_line():
    with pytest.raises(InputError, match=r"^f\.csv: invalid UTF-8 byte 0xe9 on line 2"):
        decode(b"a\nd\xe9cor\n", "f.csv", fallback="utf-8")


def test_read_bytes_detects_gzip(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert read_bytes(p) == b"a,b\n1,2\n"
    p.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(InputError, match="corrupt gzip"):
        read_bytes(p)


def test_rows_are_physical_lines(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text('"a","b"\n1,"x"\n\n2,"y"\n3\n4,"z","extra"\n5,"multi\nline"\n6,"w"\n')
    t = read_delimited(p, ["a", "b"], what="test file")
    assert t.frame["row"].to_list() == [2, 4, 7, 9]
    assert t.frame["b"].to_list() == ["x", "y", "multi\nline", "w"]
    assert t.ragged["row"].to_list() == [5, 6]
    assert t.ragged["fields"].to_list() == [1, 3]


def test_non_breaking_bytes_are_not_line_breaks(tmp_path):
    # latin-1 0x85 decodes to U+0085 (NEL), which str.splitlines would treat as a line break
    p = tmp_path / "x.csv"
    p.write_bytes(b'"a","b"\n1,"x\x85y"\n')
    t = read_delimited(p, ["a", "b"], what="test file")
    assert t.frame["b"].to_list() == ["x\x85y"]
    assert t.ragged.height == 0


def test_duplicate_header_column(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(InputError, match=r"row 1: duplicate column\(s\) a"):
        read_delimited(p, ["a", "b"], what="test file")


def test_single_field_header(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("hello\n1\n")
    with pytest.raises(InputError, match="header has a single field"):
        read_delimited(p, ["a", "b"], what="test file")
