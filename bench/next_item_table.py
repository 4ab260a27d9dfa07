"""The README's next-item table from one or more `bench/next_item.py --out` files.

A model that appears in several files is taken from the last one given. Example:

    python bench/next_item_table.py beauty.json beauty_sasrec.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HEADER = (
    "| model | Hit@5 | Hit@10 (95% CI) | Hit@20 | NDCG@5 | NDCG@10 (95% CI) | NDCG@20 | MRR "
    "| valid NDCG@10 | Δ NDCG@10 vs popularity (p) | train s |"
)


def _with_ci(cell: list[float]) -> str:
    mean, low, high = cell
    return f"{mean:.4f} [{low:.4f}, {high:.4f}]"


def _versus(result: dict) -> str:
    test = result.get("test_vs_popularity")
    if not test:
        return "–"
    p = test["p_value"]
    return f"{test['delta']:+.4f} ({'<0.001' if p < 0.001 else f'{p:.3f}'})"


def row(name: str, result: dict) -> str:
    t = result["test"]
    cells = [
        name,
        f"{t['hit@5'][0]:.4f}",
        _with_ci(t["hit@10"]),
        f"{t['hit@20'][0]:.4f}",
        f"{t['ndcg@5'][0]:.4f}",
        _with_ci(t["ndcg@10"]),
        f"{t['ndcg@20'][0]:.4f}",
        f"{t['mrr'][0]:.4f}",
        f"{result['valid']['ndcg@10'][0]:.4f}",
        _versus(result),
        f"{result['fit_s']:.0f}" if result["fit_s"] >= 10 else f"{result['fit_s']:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    args = ap.parse_args()
    models: dict[str, dict] = {}
    for path in args.results:
        models.update(json.loads(path.read_text())["models"])
    order = sorted(models, key=lambda m: (m != "popularity", -models[m]["test"]["ndcg@10"][0]))
    print(HEADER)
    print("|---" + "|---:" * 10 + "|")
    for name in order:
        print(row(name, models[name]))


if __name__ == "__main__":
    main()
