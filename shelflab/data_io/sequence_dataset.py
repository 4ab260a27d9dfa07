"""One entry point for the next-item loaders, chosen by format (params `data.format`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shelflab.data_io.relabel import relabel_items
from shelflab.data_io.sequences import (
    ITEM_TEXT_SCHEMA,
    SequenceDataset,
    load_s3rec,
    sequences_from_reviews,
)
from shelflab.data_io.unisrec import load_unisrec
from shelflab.errors import ConfigError
from shelflab.quarantine import Quarantine

SEQUENCE_FORMATS = ("s3rec", "unisrec", "amazon_reviews")
# catalog fields that describe an item, in this order, for the item text of text-aware models
ITEM_TEXT_FIELDS = ("title", "categories", "brand")


def load_sequence_dataset(
    fmt: str,
    folder: str | Path,
    *,
    sequences: str,
    quarantine: Quarantine,
    attributes: str | None = None,
    datamaps: str | None = None,
    metadata: str | None = None,
    k_core: int = 5,
    name: str | None = None,
    relabel_seed: int | None = None,
) -> SequenceDataset:
    """`sequences` is, by format: the S3-Rec sequence file; the UniSRec dataset name
    (`<name>.{train,valid,test}.inter`, `.item2index`, `.text` in `folder`); the Amazon reviews
    file (+ optional `metadata` for item text). Side-file names are relative to `folder`.
    With `relabel_seed`, item ids are replaced by a seeded permutation (`data_io.relabel`)."""
    ds = _load(
        fmt, Path(folder), sequences, quarantine, attributes, datamaps, metadata, k_core, name
    )
    return ds if relabel_seed is None else relabel_items(ds, relabel_seed)


def _load(
    fmt: str,
    folder: Path,
    sequences: str,
    quarantine: Quarantine,
    attributes: str | None,
    datamaps: str | None,
    metadata: str | None,
    k_core: int,
    name: str | None,
) -> SequenceDataset:

    def side(file: str | None) -> Path | None:
        return folder / file if file else None

    if fmt == "s3rec":
        return load_s3rec(
            folder / sequences,
            attributes=side(attributes),
            datamaps=side(datamaps),
            quarantine=quarantine,
            name=name,
        )
    if fmt == "unisrec":
        ds = load_unisrec(folder, sequences, quarantine=quarantine)
        ds.name = name or ds.name
        return ds
    if fmt == "amazon_reviews":
        from shelflab.data_io.amazon import load_review_dataset

        reviews = load_review_dataset(folder / sequences, side(metadata), quarantine=quarantine)
        ds, _ = sequences_from_reviews(reviews.reviews, k_core=k_core, name=name or "reviews")
        ds.stats["reviews"] = reviews.stats
        ds.items = (
            ds.items.select("item_id")
            .join(_item_text(reviews.items), on="item_id", how="left")
            .with_columns(pl.col("text").fill_null(""))
        )
        return ds
    raise ConfigError(f"data.format = {fmt!r}: expected one of {', '.join(SEQUENCE_FORMATS)}")


def _item_text(items: pl.DataFrame) -> pl.DataFrame:
    fields = [f for f in ITEM_TEXT_FIELDS if f in items.columns]
    text = pl.concat_str([pl.col(f).fill_null("") for f in fields], separator=". ")
    return items.select(
        pl.col("item_id").cast(pl.String), text.str.strip_chars(". ").alias("text")
    ).cast(ITEM_TEXT_SCHEMA)
