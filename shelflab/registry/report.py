"""`shelflab report`: one static HTML page (images embedded) for a track's experiment: the
leaderboard with CIs, metric@K curves, champion vs challenger per-query deltas and the alias
history of the registered model."""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from shelflab.atomic import write_text
from shelflab.config import redact
from shelflab.registry.tracking import use_tracking_uri

CURVES = ("ndcg", "recall")


def build_report(
    *,
    uri: str,
    experiment: str,
    registered: str,
    split: str,
    metric: str,
    metrics: list[str],
    baseline: str | None,
    out_dir: Path,
) -> Path:
    from mlflow.tracking import MlflowClient

    from shelflab.evaluation.leaderboard import build_leaderboard, format_leaderboard, with_costs
    from shelflab.registry.runs import latest_per_query

    use_tracking_uri(uri)
    client = MlflowClient(uri)
    latency: dict[str, dict[str, float]] = {}
    per_query = latest_per_query(uri, experiment, split, latency)
    if baseline not in per_query:
        baseline = None
    board = with_costs(
        build_leaderboard(per_query, metrics=metrics, baseline=baseline, sort_by=metric), latency
    )
    parts = [
        f"<h1>{html.escape(experiment)}</h1>",
        f"<p>{split} split; generated {datetime.now(UTC).isoformat(timespec='seconds')} from "
        f"{html.escape(redact(uri))}</p>",
        "<h2>Leaderboard</h2>",
        "<p>Means with bootstrap 95% CIs; p: paired randomisation test against the baseline.</p>",
        _markdown_table(format_leaderboard(board, "markdown"), "leaderboard"),
        "<h2>metric@K (test split)</h2>",
        _img(_curves(client, experiment), "metric at K curves"),
    ]
    parts += _champion_section(client, registered, split, metric)
    page = _PAGE.format(title=html.escape(experiment), body="\n".join(parts))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    write_text(page, path)
    return path


def _champion_section(client: Any, name: str, split: str, metric: str) -> list[str]:
    from mlflow.exceptions import MlflowException

    from shelflab.registry.aliases import CHALLENGER, CHAMPION, current, history

    out = [f"<h2>Registered model {html.escape(name)}</h2>"]
    try:
        moves = history(client, name)
    except MlflowException:
        return [*out, "<p>Not registered yet.</p>"]
    champ, chall = current(client, name, CHAMPION), current(client, name, CHALLENGER)
    out.append(f"<p>champion: version {champ or '-'}; challenger: version {chall or '-'}</p>")
    if champ and chall:
        out += _deltas(client, name, champ, chall, split, metric)
    rows = [
        [
            str(m.seq),
            m.when,
            m.alias,
            m.from_version or "-",
            m.to_version or "-",
            m.action,
            m.who,
            m.why,
        ]
        for m in moves
    ]
    out.append("<h3>Alias history</h3>")
    out.append(
        _table(
            ["#", "when (UTC)", "alias", "from", "to", "action", "who", "why"],
            rows,
            "alias-history",
        )
    )
    return out


def _deltas(client, name, champ, chall, split, metric) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shelflab.evaluation.significance import paired_test
    from shelflab.registry.promote import per_query

    a = per_query(client, client.get_model_version(name, chall), split)
    b = per_query(client, client.get_model_version(name, champ), split)
    both = a.select("query_id", pl.col(metric).alias("chall")).join(
        b.select("query_id", pl.col(metric).alias("champ")), on="query_id"
    )
    if both.height < 2:
        return ["<p>Champion and challenger share fewer than 2 queries.</p>"]
    test = paired_test(both["chall"].to_numpy(), both["champ"].to_numpy())
    d = (both["chall"] - both["champ"]).to_numpy()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(d, bins=41, color="#4c72b0")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"{metric}: challenger v{chall} - champion v{champ}, per query ({split})")
    ax.set_ylabel("queries")
    fig.tight_layout()
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    return [
        "<h3>Challenger vs champion, per query</h3>",
        f"<p>{both.height} queries: mean delta {test.delta:+.4f} "
        f"[{test.ci_low:+.4f}, {test.ci_high:+.4f}], p = {test.p_value:.4g}; challenger better "
        f"on {wins}, worse on {losses}, tied on {both.height - wins - losses}.</p>",
        _img(fig, "per-query deltas"),
    ]


def _curves(client: Any, experiment: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shelflab.registry.tracking import KIND_TAG, MODEL_TAG

    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs(
        [exp.experiment_id],
        f"tags.`{KIND_TAG}` = 'evaluation'",
        order_by=["attributes.start_time DESC"],
    )
    fig, axes = plt.subplots(1, len(CURVES), figsize=(11, 3.6))
    seen: set[str] = set()
    for run in runs:
        model = run.data.tags.get(MODEL_TAG)
        if not model or model in seen:
            continue
        seen.add(model)
        for ax, m in zip(axes, CURVES, strict=True):
            hist = client.get_metric_history(run.info.run_id, f"test_{m}_at_k")
            if hist:
                pts = sorted((h.step, h.value) for h in hist)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=model)
    for ax, m in zip(axes, CURVES, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("K")
        ax.set_ylabel(f"{m}@K")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _img(fig: Any, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _markdown_table(text: str, table_id: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    split = [_cells(ln) for ln in lines]
    return _table(split[0], split[2:], table_id)


def _cells(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    return [c.strip().replace("\\|", "|") for c in inner.split(" | ")]


def _table(header: list[str], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ShelfLab report: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
thead {{ background: #f0f0f0; }}
#alias-history td, #alias-history th {{ text-align: left; }}
</style></head>
<body>
{body}
</body></html>
"""
