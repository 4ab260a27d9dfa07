"""The UniSRec (KDD 2022) processing of an Amazon category, e.g. Scientific:

- `<name>.{train,valid,test}.inter`: RecBole atomic files `user_id:token  item_id_list:token_seq
  item_id:token` with integer ids; leave-one-out already applied: a user's test row holds the
  whole history and the last item, the valid row the history up to the second-to-last item,
  and train one row per earlier prefix.
- `<name>.item2index`: `ASIN<TAB>integer id` (no header); `<name>.text`: atomic `item_id:token
  text:token_seq` keyed by ASIN (title, categories, brand).

Each user's full sequence is its test row's history + target. The valid and train rows must
agree with it (valid = the sequence without its last item; each train row a prefix ending
before the valid target); a row that disagrees is quarantined as `disagrees with test`, as is a
user missing from the test file (`user not in test`); item ids outside item2index are `unknown
item` (the user's test row is quarantined and the user dropped), non-integer ids `non-integer
token`. The result is a SequenceDataset whose leave-one-out split reproduces the files' own.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shelflab.data_io.amazon_common import raw_lines
from shelflab.data_io.csvutil import ROW, require_file
from shelflab.data_io.recbole import read_atomic
from shelflab.data_io.sequences import (
    ITEM_ATTRIBUTES,
    ITEM_TEXT_SCHEMA,
    R_DUP_USER,
    R_NON_INTEGER,
    R_UNKNOWN_ITEM,
    SEQUENCE_SCHEMA,
    SequenceDataset,
)
from shelflab.errors import InputError
from shelflab.quarantine import Quarantine

R_DISAGREES = "disagrees with test"
R_NOT_IN_TEST = "user not in test"
_INTER_FIELDS = ["user_id", "item_id_list", "item_id"]


def find_file(folder: Path, name: str, suffix: str) -> Path:
    """`<name>.<suffix>` or its `.gz`, whichever exists (the error names both)."""
    for candidate in (folder / f"{name}.{suffix}", folder / f"{name}.{suffix}.gz"):
        if candidate.exists():
            return candidate
    return require_file(folder / f"{name}.{suffix}", f"UniSRec {suffix} file (or .gz)")


def _inter_rows(path: Path, quarantine: Quarantine) -> list[tuple[int, str, list[str], str]]:
    """(row, user, history, target) of an .inter file; non-integer rows quarantined."""
    table = read_atomic(path, _INTER_FIELDS, what=f"UniSRec interaction file {path.name}")
    bad: list[int] = []
    rows = []
    for row, user, hist, target in table.frame.select(ROW, *_INTER_FIELDS).iter_rows():
        history = hist.split()
        if not (user.isdigit() and target.isdigit() and all(t.isdigit() for t in history)):
            bad.append(row)
            continue
        rows.append((row, user, history, target))
    _quarantine_rows(table.frame, bad, quarantine, path, R_NON_INTEGER)
    if table.ragged.height:
        quarantine.add(table.ragged, source=str(path), reason="malformed record")
    return rows


def _quarantine_rows(frame: pl.DataFrame, rows: list[int], q: Quarantine, path: Path, reason: str):
    if rows:
        q.add(frame.filter(pl.col(ROW).is_in(rows)), source=str(path), reason=reason)


def load_unisrec(folder: str | Path, name: str, *, quarantine: Quarantine) -> SequenceDataset:
    """The dataset `name` of a UniSRec folder (files plain or .gz)."""
    folder = Path(folder)
    paths = {s: find_file(folder, name, f"{s}.inter") for s in ("train", "valid", "test")}
    asin_of = _item2index(find_file(folder, name, "item2index"))
    known = set(asin_of)
    rows = {s: _inter_rows(p, quarantine) for s, p in paths.items()}
    rejected: dict[str, list[tuple[int, str]]] = {}
    full = _sequences(rows, known, rejected)
    for split, bad in rejected.items():
        _quarantine_by_reason(paths[split], bad, quarantine)
    if not full:
        raise InputError("no usable user", path=paths["test"], expected="UniSRec test rows")
    texts = _item_texts(find_file(folder, name, "text"))
    ids = sorted(asin_of, key=int)
    text = [texts.get(asin_of[i], "") for i in ids]
    items = pl.DataFrame(
        {"item_id": ids, "text": text, ITEM_ATTRIBUTES: [text_attributes(t) for t in text]},
        schema={**ITEM_TEXT_SCHEMA, ITEM_ATTRIBUTES: pl.List(pl.String)},
    )
    users = sorted(full, key=int)
    sequences = pl.DataFrame(
        {"user_id": users, "items": [full[u] for u in users]}, schema=SEQUENCE_SCHEMA
    )
    stats = {
        "path": str(paths["test"]),
        "format": "unisrec",
        "users": sequences.height,
        "interactions": int(sequences["items"].list.len().sum()),
        "items": items.height,
        "items_with_text": int((items["text"] != "").sum()),
        "quarantined": {
            s: {r: sum(1 for _, x in bad if x == r) for r in {x for _, x in bad}}
            for s, bad in rejected.items()
        },
    }
    return SequenceDataset(name, sequences, items, stats)


Row = tuple[int, str, list[str], str]  # (file row, user, history, target)


def _sequences(
    rows: dict[str, list[Row]], known: set[str], rejected: dict[str, list[tuple[int, str]]]
) -> dict[str, list[str]]:
    """user -> full sequence. Histories are windows (UniSRec keeps the last 50 items), so the
    sequence is rebuilt from the shortest prefix and every row's target, then each row is
    checked against it; rows that do not fit are rejected with the reason."""
    by_user: dict[str, dict[str, list[Row]]] = {}
    for split, split_rows in rows.items():
        for r in split_rows:
            by_user.setdefault(r[1], {}).setdefault(split, []).append(r)
    window = max((len(r[2]) for split_rows in rows.values() for r in split_rows), default=0)
    full: dict[str, list[str]] = {}
    for user, parts in by_user.items():
        tests, valids = parts.get("test", []), parts.get("valid", [])
        if len(tests) != 1 or len(valids) > 1:
            reason = R_NOT_IN_TEST if not tests else R_DUP_USER
            for split, split_rows in parts.items():
                rejected.setdefault(split, []).extend((r[0], reason) for r in split_rows)
            continue
        test = tests[0]
        seq = _rebuild(test, parts.get("train", []), valids, window)
        if seq is None or not known.issuperset(seq):
            reason = R_DISAGREES if seq is None else R_UNKNOWN_ITEM
            for split, split_rows in parts.items():
                rejected.setdefault(split, []).extend((r[0], reason) for r in split_rows)
            continue
        for split in ("train", "valid"):
            for r in parts.get(split, []):
                if not _fits(seq, r, window, valid=split == "valid"):
                    rejected.setdefault(split, []).append((r[0], R_DISAGREES))
        full[user] = seq
    return full


def _rebuild(test: Row, train: list[Row], valids: list[Row], window: int) -> list[str] | None:
    """The full sequence: the test row's history + target when the history is whole (shorter
    than the window); else rebuilt from the shortest prefix and every row's target (train rows
    are written longest prefix first, so equal capped lengths sort by descending file row),
    None when that does not end in the test row."""
    whole = [*test[2], test[3]]
    if len(test[2]) < window:
        return whole
    ordered = [*sorted(train, key=lambda r: (len(r[2]), -r[0])), *valids, test]
    seq = [*ordered[0][2], *(r[3] for r in ordered)]
    return seq if seq[-len(whole) :] == whole else None


def _fits(seq: list[str], row: Row, window: int, *, valid: bool) -> bool:
    """The row is a prefix of seq: its target at the second-to-last position (valid) or before
    it (train), its history the last `window` (or all) items before the target."""
    history, target = row[2], row[3]
    positions = [len(seq) - 2] if valid else range(len(history), len(seq) - 2)
    return any(seq[p] == target and seq[max(0, p - window) : p] == history for p in positions)


def _quarantine_by_reason(path: Path, bad: list[tuple[int, str]], q: Quarantine) -> None:
    table = read_atomic(path, _INTER_FIELDS, what=f"UniSRec interaction file {path.name}")
    for reason in sorted({r for _, r in bad}):
        _quarantine_rows(table.frame, [row for row, r in bad if r == reason], q, path, reason)


def _item2index(path: Path) -> dict[str, str]:
    """integer id -> ASIN, from `ASIN<TAB>id` lines (no header)."""
    out: dict[str, str] = {}
    for n, raw in raw_lines(path):
        fields = raw.decode("utf-8", errors="replace").split("\t")
        if fields == [""]:
            continue
        if len(fields) != 2 or not fields[1].strip().isdigit():
            raise InputError(f"{raw[:80]!r}", path=path, row=n, expected="ASIN<TAB>integer id")
        out[fields[1].strip()] = fields[0].strip()
    if not out:
        raise InputError("file is empty", path=path, expected="ASIN<TAB>integer id lines")
    return out


def text_attributes(text: str) -> list[str]:
    """The categories and brand of a UniSRec item text `title. categories. brand.` (the last
    two sentences after the title; none when the text has no sentence after its title)."""
    parts = [part.strip() for part in text.split(". ")]
    parts = [part.removesuffix(".").strip() for part in parts if part.strip(" .")]
    return parts[1:][-2:]


def _item_texts(path: Path) -> dict[str, str]:
    """ASIN -> text (whitespace collapsed)."""
    frame = read_atomic(path, ["item_id", "text"], what="UniSRec text file").frame
    return {a: " ".join(t.split()) for a, t in frame.select("item_id", "text").iter_rows()}
