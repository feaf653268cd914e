"""A registered kerasweep model as MLflow serves it: raw rows in, answers in the user's terms out.

MLflow stores this file with every model `kerasweep train` registers ("models from code") and runs it
when the model is loaded (`mlflow.pyfunc.load_model`, `mlflow models serve`), so it imports nothing of
kerasweep: only MLflow, Keras, NumPy and pandas, and, for a table, `raw_columns.py`, which MLflow stores
beside it (`code_paths`) to encode raw rows (text, ints, missing cells) exactly as the trial did; for a
forecast, `series_plan.py`, which turns the latest raw rows of the series into the window the model reads. The Keras
model it wraps already holds the input scaling (and, for regression, the way back to the target's units);
this file adds the names.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd


class LabelledModel(mlflow.pyfunc.PythonModel):
    """Class names for classification and binary, label names for multilabel, numbers for regression."""

    def load_context(self, context: Any) -> None:
        backend = (context.model_config or {}).get("backend")  # the Keras backend it trained on
        if backend and "KERAS_BACKEND" not in os.environ and importlib.util.find_spec(backend) is not None:
            os.environ["KERAS_BACKEND"] = backend  # read when Keras is first imported; the model loads on any
        import keras

        self.model = keras.models.load_model(context.artifacts["keras_model"], compile=False)
        self.labels = json.loads(Path(context.artifacts["labels"]).read_text())
        self.plan = self.series = None
        if "series" in context.artifacts:  # a forecast: raw recent rows become the window
            try:
                from series_plan import SeriesPlan  # stored with the model (code_paths)
            except ImportError:  # while kerasweep itself logs the model
                from kerasweep.trainers.series_plan import SeriesPlan
            self.series = SeriesPlan.from_json(Path(context.artifacts["series"]).read_text())
        if "columns" in context.artifacts:  # a table: its column plan encodes raw rows
            try:
                from raw_columns import ColumnPlan  # stored with the model (code_paths)
            except ImportError:  # while kerasweep itself logs the model
                from kerasweep.trainers.raw_columns import ColumnPlan
            self.plan = ColumnPlan.from_json(Path(context.artifacts["columns"]).read_text())

    # the hint only tells MLflow not to validate by type hints (the signature names the columns); arrays
    # (images, sequences) arrive too
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> Any:
        if self.series is not None:  # the next `horizon` values after the latest rows, with their times
            return self.series.forecast(model_input, lambda window: self.model.predict(window, verbose=0)[0])
        if self.plan is not None:
            rows = self.plan.encode(pd.DataFrame(model_input))
        else:
            rows = model_input.to_numpy(dtype="float32") if isinstance(model_input, pd.DataFrame) else \
                np.asarray(model_input, dtype="float32")
        rows = rows.reshape((-1, *self.model.input_shape[1:]))
        out = self.model.predict(rows, verbose=0)
        task, names = self.labels["task"], self.labels["classes"]
        if task == "classification":
            return np.asarray(names, dtype=object)[out.argmax(axis=1)]
        if task == "binary":
            return np.asarray(names, dtype=object)[(out[:, 0] > 0.5).astype(int)]
        if task == "multilabel":  # one 0/1 column per label, named as the data named them
            return pd.DataFrame((out > 0.5).astype(int), columns=[str(n) for n in names])
        if out.shape[1] > 1:  # several targets: one column each, in the target's units
            return pd.DataFrame(out, columns=[str(n) for n in names])
        return out[:, 0]


mlflow.models.set_model(LabelledModel())
