"""MLflow models-from-code entry point of a ShelfLab pipeline (logged by
`shelflab.registry.pipeline_model.log_pipeline`; nothing is pickled).

Artifacts: `model` (the model directory written by train@) and `index` (the index directory
written by index@: bm25s index, embeddings or Chroma, XGBoost JSON, ...). Input: a DataFrame
with `query_id` and `text`; param `k`. Output: `query_id, item_id, score, rank`. Query text is
normalised with the settings the catalog was normalised with (kept in the index directory).
A next-item pipeline on relabelled item ids takes and returns the source's ids (the id map
`source_ids.parquet` in the index directory).
"""

from __future__ import annotations

import mlflow
from mlflow.pyfunc import PythonModel


class ShelfLabPipeline(PythonModel):
    # The logged signature (query_id + the query column) validates the input; MLflow's
    # type-hint validation would add nothing but a warning on every load (the hook MLflow's
    # own ChatModel uses to opt out).
    _skip_type_hint_validation = True

    def load_context(self, context) -> None:
        from shelflab.registry.pipeline_model import open_pipeline

        self._model, self._normalization, self._id_map = open_pipeline(
            context.artifacts["model"], context.artifacts["index"]
        )

    def predict(self, context, model_input, params=None):
        from shelflab.registry.pipeline_model import predict

        return predict(self._model, self._normalization, model_input, params, self._id_map)


mlflow.models.set_model(ShelfLabPipeline())
