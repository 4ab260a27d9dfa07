"""Build data/sample/amazon/: small real excerpts of the Amazon 2018 5-core review files.

Each kept line is copied byte for byte, in the original order; a line is kept when
sha256(seed, line) falls under the fraction, so the excerpt keeps the time spread of the file.
Output is `gzip -9 -n` (no name, no timestamp): the same inputs give the same bytes.

    python scripts/make_review_sample.py --data-dir ../shared/data --out data/sample/amazon
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
from pathlib import Path

# file -> fraction of its lines kept
EXCERPTS = {"All_Beauty_5.json.gz": 0.3, "Gift_Cards_5.json.gz": 0.1}


def keep(line: bytes, seed: int, fraction: float) -> bool:
    digest = hashlib.sha256(f"{seed}\x1f".encode() + line).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < fraction


def excerpt(src: Path, dst: Path, fraction: float, seed: int) -> int:
    with gzip.open(src, "rb") as fh:
        lines = [ln for ln in fh if keep(ln.rstrip(b"\n"), seed, fraction)]
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.writelines(lines)
    dst.write_bytes(buf.getvalue())
    return len(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("data/sample/amazon"))
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, fraction in EXCERPTS.items():
        dst = args.out / name.replace("_5.json.gz", "_5.sample.json.gz")
        n = excerpt(args.data_dir / "amazon-2018-5core" / name, dst, fraction, args.seed)
        print(f"{dst}: {n} reviews")


if __name__ == "__main__":
    main()
