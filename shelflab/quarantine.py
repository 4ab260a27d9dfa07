"""Rows that cannot be used are kept, with the reason, in a quarantine file: never dropped
silently."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from shelflab.atomic import write_parquet
from shelflab.errors import InputError

DEFAULT_MIN_KEPT_FRACTION = 0.5  # params: data.min_kept_fraction

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

    def require_kept(
        self,
        kept: int,
        *,
        unit: str,
        source: str | Path,
        min_fraction: float = DEFAULT_MIN_KEPT_FRACTION,
    ) -> None:
        """The data sanity gate of an ingest stage, before it writes anything: InputError
        when no `unit` (rows) is left after the quarantine, or fewer than `min_fraction` of the
        rows read (kept + quarantined): a header-only, truncated or column-swapped file."""
        counts = self.counts()
        rejected = sum(counts.values())
        total = kept + rejected
        why = ", ".join(f"{n} {reason}" for reason, n in counts.items())
        if kept == 0:
            detail = f"no usable {unit}" + (f" ({rejected} quarantined: {why})" if rejected else "")
            raise InputError(detail, path=source, expected=f"{unit} in the documented format")
        if kept < min_fraction * total:
            raise InputError(
                f"only {kept} of {total} {unit} usable ({kept / total:.0%}); quarantined: {why}",
                path=source,
                expected=f"at least data.min_kept_fraction = {min_fraction:g} of them usable",
            )

    def gate(self, kept: int, *, unit: str, source: str | Path, data: dict) -> None:
        """`require_kept` with the params' `data.min_kept_fraction`, then the summary line on
        stdout: what every ingest stage does before it writes anything."""
        fraction = data.get("min_kept_fraction", DEFAULT_MIN_KEPT_FRACTION)
        self.require_kept(kept, unit=unit, source=source, min_fraction=fraction)
        print(f"ingest: {self.summary_line()}", flush=True)

    def summary_line(self) -> str:
        """`quarantined N rows (reason: n, ...)`, or `quarantined 0 rows`, for the stage log."""
        counts = self.counts()
        why = ", ".join(f"{reason}: {n}" for reason, n in counts.items())
        return f"quarantined {sum(counts.values())} rows" + (f" ({why})" if why else "")
