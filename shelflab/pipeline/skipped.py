"""A model that cannot run here (`Retriever.unavailable_reason`, e.g. an LLM reranker without
an endpoint) still leaves the files an evaluation leaves, marked skipped: an empty per-query
table, a summary saying why, an empty metric@K curve. The leaderboard and the promotion
leave such a model out."""

from __future__ import annotations

from typing import Any

import polars as pl

from shelflab.atomic import atomic_dir, write_json, write_parquet, write_text
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
    _placeholder_png(csv.with_suffix(".png"), f"{name}: {reason}")


def is_skipped(summary: dict[str, Any]) -> bool:
    """A model summary (metrics/models/<name>.json) written by `write_skipped_evaluation`."""
    return SKIPPED in summary


def _placeholder_png(out, text: str) -> None:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, textwrap.fill(text, 70), ha="center", va="center", fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
