"""`shelflab drift`: drift report of a new batch of reviews against a reference set.

Imports of polars, Evidently and the encoders stay inside the functions: `shelflab --help`
must stay fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

EXIT_DRIFT = 3

_EPILOG = f"""\
inputs: Amazon 2018 or 2023 review files (JSON lines, plain or .gz, format detected) or a
Parquet file with the review columns (review_id, user_id, item_id, rating, timestamp,
summary, body, verified, votes, images). Unusable lines are quarantined and counted on stderr.

settings: the `drift:` section of params.yaml (--params, else the repo's params.yaml, else
built-in defaults; see shelflab/drift.py).

dataset drift = share of drifted feature columns >= drift_share OR embedding drift.

exit status: 0 done (drift or not, unless --fail-on-drift); 1 error (bad input or settings);
{EXIT_DRIFT} dataset drift found and --fail-on-drift given. The report is written either way.
"""


def add_drift_parser(sub: Any) -> None:
    """Register `drift` on the `shelflab` subcommand parsers."""
    p = sub.add_parser(
        "drift",
        help="drift report (Evidently) of a new batch of reviews against a reference",
        description="Compare a new batch of product reviews with a reference set: drift of\n"
        "each review feature (rating, text length, gaps, ...) and of the review-text\n"
        "embeddings (MiniLM). Writes report.html and summary.json into --out.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--reference",
        help="reference reviews (default: the training period of the review track's pipeline, "
        "tracks/reviews/data/processed/{reviews,splits}.parquet)",
    )
    p.add_argument("--batch", required=True, help="new reviews to check")
    p.add_argument("--out", required=True, help="directory for report.html and summary.json")
    p.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="stdout: a short table (text, default) or the summary JSON alone (json)",
    )
    p.add_argument(
        "--fail-on-drift",
        action="store_true",
        help=f"exit with status {EXIT_DRIFT} when dataset drift is found",
    )
    p.add_argument(
        "--model",
        help="also score this model of the review track (a key of its params.yaml `models`, or "
        "`champion`, as its promote stage left it) on the batch's review -> item queries and "
        "compare with its test-split metrics",
    )
    p.add_argument(
        "--params",
        help="params.yaml holding a `drift:` section (default: the review track's params.yaml)",
    )
    p.set_defaults(handler=cmd_drift)


# ---------------------------------------------------------------------------- inputs


def drift_config(params_path: str | None, root: Path) -> dict[str, Any]:
    """The `drift:` section of --params, else of the repo's params.yaml; {} (the built-in
    defaults) when there is no such file or section."""
    from shelflab.config import PARAMS_FILE, load_params
    from shelflab.drift.batches import track_root
    from shelflab.errors import ConfigError

    path = Path(params_path) if params_path else track_root(root) / PARAMS_FILE
    if not params_path and not path.is_file():
        return {}
    section = load_params(path).get("drift") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: section 'drift' must be a mapping")
    return section


# ---------------------------------------------------------------------------- output


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def format_text(summary: dict[str, Any], out_dir: Path) -> str:
    """A short human table of the summary."""
    verdict = "DRIFT" if summary["dataset_drift"] else "no drift"
    lines = [
        f"dataset drift: {verdict}  (reference {summary['n_reference']} rows, "
        f"batch {summary['n_batch']} rows)",
        f"drifted columns: {summary['drift_share']:.0%} "
        f"(threshold {summary['drift_share_threshold']:.0%})",
        f"{'column':<20} {'test':<30} {'score':>9} {'threshold':>9}  drift",
    ]
    for name, col in summary["columns"].items():
        lines.append(
            f"{name:<20} {col['statistic']:<30} {_num(col['score']):>9} "
            f"{col['stattest_threshold']:>9.4f}  {'yes' if col['drifted'] else 'no'}"
        )
    emb = summary["embeddings"]
    model = summary.get("model", {}).get("comparison")
    lines.append(
        f"{'embeddings':<20} {emb['method'] + ' (' + emb['model'] + ')':<30} "
        f"{_num(emb['score']):>9} {emb['threshold']:>9.4f}  {'yes' if emb['drifted'] else 'no'}"
    )
    if model:
        lines.append(
            f"model {summary['model']['model']} {model['metric']}: batch "
            f"{model['batch']['mean']:.4f} vs test {model['test']['mean']:.4f}, delta "
            f"{model['delta']:+.4f} [{model['delta_ci'][0]:+.4f}, {model['delta_ci'][1]:+.4f}] "
            f"p={model['p_value']:.4f} ({model['method']})"
            + (" SIGNIFICANT DROP" if model["significant_drop"] else "")
        )
    elif "model" in summary:
        lines.append(f"model {summary['model']['model']}: {summary['model'].get('note')}")
    lines.append(f"report: {out_dir / 'report.html'}")
    return "\n".join(lines)


def cmd_drift(args: argparse.Namespace) -> None:
    from shelflab.config import find_root
    from shelflab.drift.batches import default_reference, read_reviews_file
    from shelflab.drift.report import run_drift
    from shelflab.errors import ConfigError
    from shelflab.layout import Layout

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    root = find_root()
    cfg = drift_config(args.params, root)
    batch = read_reviews_file(args.batch)
    if args.reference:
        reference, ref_label = read_reviews_file(args.reference), args.reference
    else:
        reference, ref_label = default_reference(root)
    result = run_drift(
        reference,
        batch,
        cfg,
        cache_dir=Layout(root).cache_dir,
        labels=(ref_label, args.batch),
    )
    if args.model:
        result.summary["model"] = _model_side(root, args.model, batch)
    result.save(out)
    if args.format == "json":
        print(json.dumps(result.summary, indent=2, sort_keys=True))
    else:
        print(format_text(result.summary, out))
    if args.fail_on_drift and result.dataset_drift:
        raise SystemExit(EXIT_DRIFT)


def _model_side(root: Path, key: str, batch: pl.DataFrame) -> dict[str, Any]:
    from shelflab.config import load_params
    from shelflab.drift.batches import champion_model, model_side, track_root

    track = track_root(root)
    params = load_params(track / "params.yaml")
    key = champion_model(track) if key == "champion" else key
    return model_side(track, params, key, batch)
