"""Model card (markdown) logged with every registered pipeline version: data, split, params,
metrics with CIs, results per query-length segment, known limits."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from shelflab.contract import HISTORY, QUERY_ID, TEXT

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
    out = [f"# {registered}: `{model}` ({family})", ""]
    out += ["## Data", ""]
    out += [f"- {k}: {v}" for k, v in data.items()]
    out += ["", "## Metrics (mean and bootstrap 95% CI)", ""]
    splits = [s for s in summary if not s.startswith("_")]
    out.append("| metric | " + " | ".join(splits) + " |")
    out.append("|---|" + "---:|" * len(splits))
    for m in metrics:
        cells = []
        for s in splits:
            v = summary[s].get(m)
            cells.append(f"{v['mean']:.4f} [{v['ci_low']:.4f}, {v['ci_high']:.4f}]" if v else "")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
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
