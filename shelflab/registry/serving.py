"""A registered pipeline run on new queries through its MLflow pyfunc: what `shelflab evaluate
--model` and `shelflab lockbox` both score."""

from __future__ import annotations

import polars as pl

from shelflab.contract import validate_run
from shelflab.errors import ConfigError


def predict_registered(model_uri: str, queries: pl.DataFrame, k: int) -> pl.DataFrame:
    """The checked run (top `k` per query) of the pipeline at `model_uri` (models:/…, runs:/…)
    for `queries` (query_id + text or history); ConfigError when it cannot be loaded."""
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except mlflow.exceptions.MlflowException as err:
        raise ConfigError(f"cannot load {model_uri}: {err.message}") from None
    out = model.predict(queries.to_pandas(), params={"k": k})
    return validate_run(pl.from_pandas(out), f"{model_uri} run")
