"""Build data/sample/sequences/: small real excerpts of the next-item benchmark files.

A user is kept when sha256(seed, user id) falls under the fraction, so the excerpt is a random
set of whole users (every line of a kept user, byte for byte, in the original order). The side
files are cut down to what the kept users reference: for Beauty the item2attributes entries and
datamaps of the kept items (and their attributes), for Scientific the item2index and text lines
of the kept items. Output is `gzip -9 -n`: the same inputs give the same bytes.

    python scripts/make_sequence_sample.py --data-dir ../shared/data --out data/sample/sequences
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
from pathlib import Path

FRACTION = 0.1


def keep(user: bytes, seed: int, fraction: float = FRACTION) -> bool:
    digest = hashlib.sha256(f"{seed}\x1f".encode() + user).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < fraction


def write_gz(lines: list[bytes], dst: Path) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.writelines(lines)
    dst.write_bytes(buf.getvalue())


def read_lines(src: Path) -> list[bytes]:
    with gzip.open(src, "rb") as fh:
        return fh.readlines()


def dump_json(obj: object) -> list[bytes]:
    return [json.dumps(obj, separators=(", ", ": ")).encode() + b"\n"]


def beauty(src: Path, out: Path, seed: int) -> dict[str, int]:
    lines = [ln for ln in read_lines(src / "Beauty.txt.gz") if keep(ln.split(b" ", 1)[0], seed)]
    items = {tok.decode() for ln in lines for tok in ln.split()[1:]}
    write_gz(lines, out / "Beauty.sample.txt.gz")
    attrs = json.loads(gzip.decompress((src / "Beauty_item2attributes.json.gz").read_bytes()))
    kept_attrs = {k: v for k, v in attrs.items() if k in items}
    write_gz(dump_json(kept_attrs), out / "Beauty.sample_item2attributes.json.gz")
    maps = json.loads(gzip.decompress((src / "Beauty_datamaps.json.gz").read_bytes()))
    used = {str(a) for v in kept_attrs.values() for a in v}
    users = {ln.split(b" ", 1)[0].decode() for ln in lines}
    small = {
        "id2item": {k: v for k, v in maps["id2item"].items() if k in items},
        "id2user": {k: v for k, v in maps["id2user"].items() if k in users},
        "id2attribute": {k: v for k, v in maps["id2attribute"].items() if k in used},
    }
    write_gz(dump_json(small), out / "Beauty.sample_datamaps.json.gz")
    return {"users": len(lines), "items": len(items)}


def scientific(src: Path, out: Path, seed: int) -> dict[str, int]:
    users: set[bytes] = set()
    items: set[bytes] = set()
    for split in ("train", "valid", "test"):
        lines = read_lines(src / f"Scientific.{split}.inter.gz")
        kept = [lines[0]] + [ln for ln in lines[1:] if keep(ln.split(b"\t", 1)[0], seed)]
        for ln in kept[1:]:
            user, history, target = ln.rstrip(b"\n").split(b"\t")
            users.add(user)
            items.update(history.split())
            items.add(target)
        write_gz(kept, out / f"Scientific.sample.{split}.inter.gz")
    index = [ln for ln in read_lines(src / "Scientific.item2index.gz")
             if ln.rstrip(b"\n").split(b"\t")[1] in items]  # fmt: skip
    asins = {ln.split(b"\t", 1)[0] for ln in index}
    write_gz(index, out / "Scientific.sample.item2index.gz")
    text = read_lines(src / "Scientific.text.gz")
    write_gz([text[0]] + [ln for ln in text[1:] if ln.split(b"\t", 1)[0] in asins],
             out / "Scientific.sample.text.gz")  # fmt: skip
    return {"users": len(users), "items": len(items)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("data/sample/sequences"))
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("Beauty:", beauty(args.data_dir / "amazon-s3rec-seq", args.out, args.seed))
    print("Scientific:", scientific(args.data_dir / "amazon-2018-scientific-unisrec", args.out,
                                    args.seed))  # fmt: skip


if __name__ == "__main__":
    main()
