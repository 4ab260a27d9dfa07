"""XGBoost glue of `xgb_ltr`'s training: ranking DMatrix built from labelled candidate
frames, and the callback that reports valid ndcg@10 (Optuna prunes there)."""

from __future__ import annotations

from typing import Any

import polars as pl

from shelflab.contract import GRADE, QUERY_ID
from shelflab.models.training import report_valid


def report_valid_callback(ctx: Any, every: int) -> Any:
    """An XGBoost callback passing valid ndcg@10 to `report_valid` every `every` rounds (an
    exception it raises, e.g. optuna.TrialPruned, ends the training)."""
    import xgboost as xgb

    class ReportValid(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            if (epoch + 1) % every == 0:
                report_valid(ctx, (epoch + 1) // every, float(evals_log["valid"]["ndcg@10"][-1]))
            return False

    return ReportValid()


def dmatrix(frame: pl.DataFrame, names: list[str], binary: bool) -> Any:
    """binary (rank:map, which takes 0/1 labels only): label = grade > 0."""
    import numpy as np
    import xgboost as xgb

    label = frame[GRADE].to_numpy()
    if binary:
        label = (label > 0).astype(np.float64)

    qid = frame.select(pl.col(QUERY_ID).rank("dense"))[QUERY_ID].to_numpy().astype(np.int64)
    return xgb.DMatrix(
        frame.select(names).to_numpy().astype(np.float32),
        label=label,
        qid=qid,
        feature_names=names,
    )
