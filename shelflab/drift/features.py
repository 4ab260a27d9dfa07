"""Per-review features that drift reports compare: numbers about each review, its text and
how often its item and its user were reviewed.

Columns of `drift_features(reviews)`, one row per review, in input order:
- rating, verified (0/1), votes, images: as published;
- text_chars, text_words: characters and whitespace-separated words of summary + body;
- item_gap_days / user_gap_days: days since the previous review of the same item / by the same
  user within the frame (null for the first one);
- text_nonletter_pct, text_sentences: Evidently text descriptors (NonLetterCharacterPercentage,
  SentenceCount) of summary + body.

Only Evidently descriptors that run offline are used: OOVWordsPercentage, Sentiment and
TriggerWordsPresent call `nltk.download` (wordnet, words, vader), the HuggingFace/BERTScore/
SemanticSimilarity ones fetch models, and the LLM ones call an API, so none of those is here.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from shelflab.errors import InputError

REQUIRED_COLUMNS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "rating",
    "timestamp",
    "summary",
    "body",
    "verified",
    "votes",
    "images",
)
BASE_FEATURES: tuple[str, ...] = (
    "rating",
    "text_chars",
    "text_words",
    "verified",
    "votes",
    "images",
    "item_gap_days",
    "user_gap_days",
)
# Evidently descriptor -> our column name (all offline; see the module docstring)
DESCRIPTOR_FEATURES: dict[str, str] = {
    "NonLetterCharacterPercentage": "text_nonletter_pct",
    "SentenceCount": "text_sentences",
}
FEATURES: tuple[str, ...] = (*BASE_FEATURES, *DESCRIPTOR_FEATURES.values())
SECONDS_PER_DAY = 86_400
DISTINCT_KEY = ("user_id", "timestamp", "summary", "body")  # = review_track.REVIEW_KEY
MIN_ROWS = 3  # Evidently draws a 2-D density of each side: two points make a line


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Null)


def _is_number(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Null


_DTYPE_CHECKS = {
    "user_id": _is_text,
    "item_id": _is_text,
    "summary": _is_text,
    "body": _is_text,
    "rating": _is_number,
    "timestamp": _is_number,
    "votes": _is_number,
    "images": _is_number,
    "verified": lambda d: d == pl.Boolean or d.is_integer() or d == pl.Null,
}
TEXT = "_text"


def check_reviews(reviews: pl.DataFrame, what: str = "reviews") -> None:
    """InputError unless `reviews` is a polars frame of at least MIN_ROWS reviews with the
    REQUIRED_COLUMNS, of usable types; `what` names it in the message (e.g. its file)."""
    if not isinstance(reviews, pl.DataFrame):
        raise InputError(
            f"expected a polars DataFrame of reviews, got {type(reviews).__module__}."
            f"{type(reviews).__name__}",
            path=what,
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in reviews.columns]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}",
            path=what,
            expected=f"review columns {', '.join(REQUIRED_COLUMNS)}",
        )
    if reviews.height < MIN_ROWS:
        raise InputError(
            f"{reviews.height} review(s): too few to compare",
            path=what,
            expected=f"at least {MIN_ROWS} reviews",
        )
    bad = [
        f"{name} ({reviews.schema[name]})"
        for name, ok in _DTYPE_CHECKS.items()
        if not ok(reviews.schema[name])
    ]
    if bad:
        raise InputError(
            f"column(s) of the wrong type: {', '.join(bad)}",
            path=what,
            expected="numbers for rating, timestamp, votes, images; text for ids, summary, "
            "body; a boolean or 0/1 for verified",
        )


def distinct_reviews(reviews: pl.DataFrame) -> pl.DataFrame:
    """The first row of each distinct review (same user, time, summary and body): Amazon 2018
    repeats a review under every variant of a product (All_Beauty_5: 5,269 lines, 1,382
    distinct reviews), which would weigh those reviews several times in the statistics."""
    return reviews.unique(list(DISTINCT_KEY), keep="first", maintain_order=True)


def review_text(reviews: pl.DataFrame) -> pl.Series:
    """Summary and body as one text (the body alone when the summary is blank, and so on)."""
    return reviews.select(
        pl.concat_str(
            [pl.col("summary").fill_null(""), pl.col("body").fill_null("")], separator="\n"
        )
        .str.strip_chars()
        .alias(TEXT)
    )[TEXT]


def _gap_days(key: str) -> pl.Expr:
    # previous review of the same key in time order; ties (same day) give a gap of 0
    previous = pl.col("timestamp").shift(1).over(key, order_by="timestamp")
    return ((pl.col("timestamp") - previous) / SECONDS_PER_DAY).cast(pl.Float64)


def base_features(reviews: pl.DataFrame) -> pl.DataFrame:
    """The features computed here (everything but the Evidently descriptors)."""
    check_reviews(reviews)
    text = review_text(reviews)
    return reviews.with_columns(text).select(
        pl.col("rating").cast(pl.Float64),
        pl.col(TEXT).str.len_chars().cast(pl.Int64).alias("text_chars"),
        pl.col(TEXT).str.count_matches(r"\S+").cast(pl.Int64).alias("text_words"),
        pl.col("verified").cast(pl.Int64).fill_null(0),
        pl.col("votes").fill_null(0).cast(pl.Int64),
        pl.col("images").fill_null(0).cast(pl.Int64),
        _gap_days("item_id").alias("item_gap_days"),
        _gap_days("user_id").alias("user_gap_days"),
    )


def _descriptors() -> list[Any]:
    from evidently import descriptors

    return [
        getattr(descriptors, name)(TEXT, alias=alias) for name, alias in DESCRIPTOR_FEATURES.items()
    ]


def descriptor_features(texts: pl.Series) -> pl.DataFrame:
    """Evidently's offline text descriptors of `texts`, one column per DESCRIPTOR_FEATURES."""
    import pandas as pd
    from evidently import DataDefinition, Dataset

    frame = pd.DataFrame({TEXT: texts.to_list()})
    dataset = Dataset.from_pandas(
        frame, data_definition=DataDefinition(text_columns=[TEXT]), descriptors=_descriptors()
    )
    values = dataset.as_dataframe()
    return pl.DataFrame(
        {
            alias: pl.Series(alias, values[alias].to_numpy(), dtype=pl.Float64)
            for alias in DESCRIPTOR_FEATURES.values()
        }
    )


def drift_features(reviews: pl.DataFrame) -> pl.DataFrame:
    """FEATURES of each review (see the module docstring), in input order."""
    base = base_features(reviews)
    return pl.concat([base, descriptor_features(review_text(reviews))], how="horizontal")
