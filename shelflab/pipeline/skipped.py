"""A model that cannot run here (`Retriever.unavailable_reason`, e.g. an LLM reranker without
an endpoint) still leaves the files an evaluation leaves, marked skipped: an empty per-query
table, a summary saying why, an empty metric@K curve. The leaderboard and the promotion
leave such a model out."""

from __future__ import annotations

from typing import Any

import polars as pl

from shelflab.atomic import atomic_dir, write_json, write_parquet, write_text
from shelflab.evaluation.plots import placeholder_plot
from shelflab.layout import Layout

SKIPPED = "skipped"


def write_skipped_evaluation(layout: Layout, name: str, reason: str) -> None:
    with atomic_dir(layout.runs_dir(name)) as tmp:
        write_text(reason + "\n", tmp / "SKIPPED")
    write_parquet(
        pl.DataFrame(schema={"query_id": pl.String, "split": pl.String}), layout.per_query(name)
    )
    write_json({SKIPPED: reason}, layout.model_metrics(name))
    csv = layout.curve(name)
    write_text("k,recall\n", csv)
    placeholder_plot(f"{name}: {reason}", csv.with_suffix(".png"))


def is_skipped(summary: dict[str, Any]) -> bool:
    """A model summary (metrics/models/<name>.json) written by `write_skipped_evaluation`."""
    return SKIPPED in summary
