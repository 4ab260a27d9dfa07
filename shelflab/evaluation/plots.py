"""Static plots logged as artifacts (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping
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
    _save(fig, out)


def placeholder_plot(text: str, out: Path) -> None:
    """A plot holding only `text` (e.g. why a model was not evaluated), where a stage must
    leave one."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, textwrap.fill(text, 70), ha="center", va="center", fontsize=9)
    _save(fig, out)


def _save(fig, out: Path) -> None:
    """Write `fig` to `out` atomically (a temp file in the same folder, then renamed)."""
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)


def importance_plot(gain: Mapping[str, float], title: str, out: Path, top: int = 30) -> Path:
    """Horizontal bar chart of the `top` features by total gain (learned rankers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = sorted(gain.items(), key=lambda kv: (kv[1], kv[0]))[-top:]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(bars) + 1)))
    ax.barh([k for k, _ in bars], [v for _, v in bars], color="#4477aa")
    ax.set_xlabel("total gain")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
