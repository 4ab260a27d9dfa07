"""Static plots logged as artifacts (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def metric_at_k_plot(curve: pl.DataFrame, title: str, out: Path) -> None:
    """`curve` has a `k` column and one column per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in curve.columns:
        if name != "k":
            ax.plot(curve["k"], curve[name], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("K")
    ax.set_ylabel("metric@K")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
