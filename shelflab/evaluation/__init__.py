"""Evaluation harness: metrics by name on polars qrels/runs, bootstrap CIs, paired tests and
leaderboards. Knows nothing of models.

    from shelflab.evaluation import evaluate
    result = evaluate(qrels, run, ["ndcg@10", "recall@100", "mrr"])
    result.per_query, result.means
"""

from shelflab.evaluation.harness import EvalResult, evaluate
from shelflab.evaluation.leaderboard import build_leaderboard, format_leaderboard
from shelflab.evaluation.metrics import METRICS, GainMatrix, MetricSpec, parse_metric
from shelflab.evaluation.significance import PairedResult, bootstrap_ci, paired_test, summarize

__all__ = [
    "METRICS",
    "EvalResult",
    "GainMatrix",
    "MetricSpec",
    "PairedResult",
    "bootstrap_ci",
    "build_leaderboard",
    "evaluate",
    "format_leaderboard",
    "paired_test",
    "parse_metric",
    "summarize",
]
