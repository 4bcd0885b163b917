"""Stage: wiring. The MLflow pyfunc wrapper of a transitcast model directory, logged *from code*.

MLflow stores this file next to the model instead of a pickle. Loading reads the LightGBM native text
model(s) and JSON metadata with `models.lgbm.load_model`; predicting converts pandas (MLflow's exchange
format) to Polars at the edge and back.
"""

from __future__ import annotations

from typing import Any

import mlflow
import polars as pl
from mlflow.pyfunc import PythonModel

__all__ = ["TransitcastPyfunc"]


class TransitcastPyfunc(PythonModel):
    """Serves a transitcast model directory through MLflow's pyfunc interface."""

    def load_context(self, context: Any) -> None:
        """Load the model directory logged as the `model_dir` artifact."""
        from models.lgbm import load_model

        self.model = load_model(context.artifacts["model_dir"])

    # Left without type hints on purpose: MLflow infers input validation from `predict`'s hints, and this
    # wrapper passes pandas through to the transitcast model unchanged.
    def predict(self, context, model_input, params=None):  # noqa: ARG002
        """Predict on a pandas frame of feature columns; returns a pandas frame of outputs."""
        return self.model.predict(pl.from_pandas(model_input)).to_pandas()


mlflow.models.set_model(TransitcastPyfunc())
