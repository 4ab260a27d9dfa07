"""Model card (markdown) logged with every registered pipeline version: data, split, params,
metrics with CIs, results per query-length segment, known limits."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from shelflab.contract import HISTORY, QUERY_ID, TEXT

CARD_FILE = "model_card.md"  # the card's name among a run's artifacts

SEGMENTS = ((1, 1, "1 word"), (2, 2, "2 words"), (3, 4, "3-4 words"), (5, 10**6, "5+ words"))
# next-item queries are histories: segments by the number of items a user has had
HISTORY_SEGMENTS = ((1, 2, "1-2 items"), (3, 5, "3-5 items"), (6, 10, "6-10 items"),
                    (11, 10**6, "11+ items"))  # fmt: skip


def length_segments(per_query: pl.DataFrame, queries: pl.DataFrame, metrics: list[str]):
    """Mean of `metrics` per query-length bucket: words of the normalised query text, or items
    of a next-item history."""
    if HISTORY in queries.columns:
        length, segments = pl.col(HISTORY).list.len(), HISTORY_SEGMENTS
    else:
        length, segments = pl.col(TEXT).str.split(" ").list.len(), SEGMENTS
    words = queries.select(QUERY_ID, length.alias("words"))
    joined = per_query.join(words, on=QUERY_ID, how="left")
    rows = []
    for low, high, label in segments:
        part = joined.filter(pl.col("words").is_between(low, high))
        if part.height:
            rows.append(
                {"segment": label, "n": part.height, **{m: part[m].mean() for m in metrics}}
            )
    return rows


def heading(registered: str, model: str, family: str) -> str:
    return f"# {registered}: `{model}` ({family})"


def data_lines(data: dict[str, Any]) -> list[str]:
    return [f"- {k}: {v}" for k, v in data.items()]


def metrics_table(
    summary: dict[str, dict[str, Any]], metrics: list[str], splits: list[str] | None = None
) -> list[str]:
    """Markdown table: one row per metric, one column per split (default: every split of the
    summary), each cell `mean [ci_low, ci_high]`."""
    if splits is None:
        splits = [s for s in summary if not s.startswith("_")]
    out = ["| metric | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    for m in metrics:
        cells = []
        for s in splits:
            v = summary[s].get(m)
            cells.append(f"{v['mean']:.4f} [{v['ci_low']:.4f}, {v['ci_high']:.4f}]" if v else "")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return out


def version_summary(
    *,
    model: str,
    family: str,
    registered: str,
    summary: dict[str, dict[str, Any]],
    data: dict[str, Any],
    metrics: list[str],
    split: str = "test",
) -> str:
    """The model card's head, short enough for a registered version's description: heading,
    data (dataset, data hash, split, ...) and the `split` metrics (every split when the summary
    has no `split`)."""
    splits = [split] if split in summary else None
    out = [heading(registered, model, family), "", *data_lines(data), ""]
    out += ["Mean and bootstrap 95% CI:", "", *metrics_table(summary, metrics, splits)]
    out += ["", f"Full model card: `{CARD_FILE}` (artifact of the evaluation run)."]
    return "\n".join(out) + "\n"


def model_card(
    *,
    model: str,
    family: str,
    registered: str,
    params: dict[str, Any],
    summary: dict[str, dict[str, Any]],
    per_query: pl.DataFrame,
    queries: pl.DataFrame,
    data: dict[str, Any],
    metrics: list[str],
    limits: list[str],
) -> str:
    out = [heading(registered, model, family), ""]
    out += ["## Data", ""]
    out += data_lines(data)
    out += ["", "## Metrics (mean and bootstrap 95% CI)", ""]
    out += metrics_table(summary, metrics)
    latency = summary.get("test", {}).get("_latency")
    if latency:
        out += [
            "",
            f"Latency per query (test, one at a time): p50 {latency['p50_ms']:.1f} ms, "
            f"p95 {latency['p95_ms']:.1f} ms over {int(latency['queries'])} queries.",
        ]
    test = (
        per_query.filter(pl.col("split") == "test") if "split" in per_query.columns else per_query
    )
    seg = length_segments(test, queries, metrics[:2])
    if seg:
        out += ["", "## Test results by query length", ""]
        out.append("| segment | n | " + " | ".join(metrics[:2]) + " |")
        out.append("|---|---:|" + "---:|" * len(metrics[:2]))
        for row in seg:
            out.append(
                f"| {row['segment']} | {row['n']} | "
                + " | ".join(f"{row[m]:.4f}" for m in metrics[:2])
                + " |"
            )
    out += ["", "## Params", "", "```json", json.dumps(params, indent=2, sort_keys=True), "```"]
    out += ["", "## Known limits", ""] + [f"- {x}" for x in limits]
    return "\n".join(out) + "\n"
