"""Rows that cannot be used are kept, with the reason, in a quarantine file: never dropped
silently."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from shelflab.atomic import write_parquet

log = logging.getLogger(__name__)


@dataclass
class Quarantine:
    """Collects rejected rows from several sources; `write` saves them with counts per reason."""

    frames: list[pl.DataFrame] = field(default_factory=list)

    def add(self, rows: pl.DataFrame, *, source: str, reason: str) -> None:
        """`rows` may have any columns; they are kept as strings, with the source file, the
        original row number (column `row`, when present) and the reason."""
        if rows.height == 0:
            return
        if "row" not in rows.columns:
            rows = rows.with_row_index("row", offset=1)
        payload = rows.drop("row")
        record = pl.DataFrame(
            {
                "source": [source] * rows.height,
                "row": rows["row"].cast(pl.Int64),
                "reason": [reason] * rows.height,
                "record": payload.select(pl.struct(pl.all()).struct.json_encode().alias("record"))[
                    "record"
                ]
                if payload.width
                else [""] * rows.height,
            }
        )
        self.frames.append(record)
        log.warning("quarantined %d row(s) of %s: %s", rows.height, source, reason)

    def table(self) -> pl.DataFrame:
        if not self.frames:
            return pl.DataFrame(
                schema={
                    "source": pl.String,
                    "row": pl.Int64,
                    "reason": pl.String,
                    "record": pl.String,
                }
            )
        return pl.concat(self.frames)

    def counts(self) -> dict[str, int]:
        t = self.table()
        if t.height == 0:
            return {}
        grouped = t.group_by("reason").len().sort("reason")
        return dict(zip(grouped["reason"].to_list(), grouped["len"].to_list(), strict=True))

    def write(self, path: str | Path) -> dict[str, int]:
        """Always writes the file (empty when nothing was rejected) so DVC can track it."""
        write_parquet(self.table(), path)
        return self.counts()
