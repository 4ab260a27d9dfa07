#!/usr/bin/env python
"""Build data/sample/ (the shipped Home Depot excerpt) reproducibly from the real files.

    python scripts/make_sample.py [--data-dir ../shared/data] [--out data/sample]
                                  [--terms 500] [--distractors 3000] [--seed 42]

Picks `--terms` distinct search terms (seeded sample of the sorted distinct terms) and copies
every train.csv row judging them; copies from products.csv every product those rows judge,
`--distractors` other products (seeded sample), and every product whose title holds non-ASCII
bytes (the mojibake examples textnorm repairs). Rows are copied byte for byte, in the original
order, under the original header, so the excerpt has the originals' exact format (latin-1,
every field quoted except numbers) and the same loader reads it. Output files are gzipped
deterministically (no name, mtime 0), so the same inputs give the same bytes; SHA256SUMS lists
the sha256 of the decompressed files.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HD = "home-depot-search-relevance"


def default_data_dir() -> Path:
    return Path(os.environ.get("SHELFLAB_DATA_DIR", REPO.parent / "shared" / "data"))


def _lines(path: Path) -> tuple[bytes, list[bytes]]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines[0], lines[1:]


def _fields(line: bytes) -> list[str]:
    return next(csv.reader(io.StringIO(line.decode("latin-1"), newline="")))


def _find(directory: Path, stem: str) -> Path:
    for p in (directory / f"{stem}.csv", directory / f"{stem}.csv.gz"):
        if p.is_file():
            return p
    raise SystemExit(
        f"{directory / stem}.csv[.gz]: file not found (expected the Home Depot "
        f"{stem} file; set --data-dir or SHELFLAB_DATA_DIR)"
    )


def _write_gz(path: Path, header: bytes, lines: list[bytes]) -> str:
    body = header + b"\n" + b"".join(line + b"\n" for line in lines)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(body)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return hashlib.sha256(body).hexdigest()


def make_sample(
    data_dir: Path, out: Path, n_terms: int = 500, n_distractors: int = 3000, seed: int = 42
) -> dict[str, int]:
    src = data_dir / HD
    train_header, train = _lines(_find(src, "train"))
    products_header, products = _lines(_find(src, "products"))

    train_fields = [_fields(line) for line in train]
    if any(len(f) != 5 for f in train_fields):
        raise SystemExit("train.csv: a record spans lines or is malformed; expected one per line")
    terms = sorted({f[3] for f in train_fields})
    chosen = set(random.Random(seed).sample(terms, n_terms))
    keep_train = [line for line, f in zip(train, train_fields, strict=True) if f[3] in chosen]
    judged = {f[1] for f in train_fields if f[3] in chosen}

    uids = [_fields(line)[0] for line in products]
    others = sorted(u for u in set(uids) if u not in judged)
    distractors = set(random.Random(seed + 1).sample(others, n_distractors))
    non_ascii = {u for u, line in zip(uids, products, strict=True) if not line.isascii()}
    wanted = judged | distractors | non_ascii
    keep_products = [line for u, line in zip(uids, products, strict=True) if u in wanted]
    missing = judged - set(uids)
    if missing:
        raise SystemExit(f"products.csv lacks {len(missing)} judged product(s)")

    out.mkdir(parents=True, exist_ok=True)
    sums = {
        "train.csv": _write_gz(out / "train.csv.gz", train_header, keep_train),
        "products.csv": _write_gz(out / "products.csv.gz", products_header, keep_products),
    }
    (out / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())))
    return {
        "terms": len(chosen),
        "train_rows": len(keep_train),
        "products": len(keep_products),
        "judged_products": len(judged),
        "distractors": len(distractors),
        "non_ascii_products": len(non_ascii),
        "non_ascii_extra": len(non_ascii - judged - distractors),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=default_data_dir())
    ap.add_argument("--out", type=Path, default=REPO / "data" / "sample")
    ap.add_argument("--terms", type=int, default=500)
    ap.add_argument("--distractors", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    counts = make_sample(args.data_dir, args.out, args.terms, args.distractors, args.seed)
    for k, v in counts.items():
        print(f"{k}: {v}")
    for f in sorted(args.out.glob("*.gz")):
        print(f"{f}: {f.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
