"""Production training from an exported config: same trainer as the sweep, then MLflow and the registry.

`make train CONFIG=runs/exports/cnn.yaml` lands here: train with EarlyStopping (best weights kept),
a best checkpoint written to a path it returns, TensorBoard logs, an MLflow run in the space's
production experiment linked to the source trial, and a new registered model version.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerasweep.search.errors import UserInputError
from kerasweep.search.export import read_export
from kerasweep.search.store import Store, check_store
from kerasweep.search.tracking import Tracker
from kerasweep.search.trial import runtime_tags
from kerasweep.trainers.backend import backend_problem


@dataclass(frozen=True)
class ProductionResult:
    """Where the trained model went and how good it is."""

    model_path: Path
    metric: str
    best_value: float
    best_epoch: int
    mlflow_run_id: str
    registered_name: str
    version: int


def train_config(config_path: Path | str, store: Path | str = "runs", epochs: int | None = None,
                 output: Path | str | None = None, verbose: bool = False,
                 tracker: Tracker | None = None) -> ProductionResult:
    """Train an exported config, save the best model, log and register it; see the module docstring.

    `tracker`: the store's, when the caller opened it already (the CLI does, before TensorFlow loads).
    """
    from kerasweep.trainers.fit import load_data, tensorboard_callback, train

    config_path, store = Path(config_path), Path(store)
    problem = backend_problem()
    if problem:
        raise UserInputError(problem)
    spec, provenance = read_export(config_path)
    if epochs:
        spec = dataclasses.replace(spec, epochs=epochs)
    name = provenance.space or spec.model  # a checked name, never a path (see export.Provenance)
    model_path = Path(output) if output else Store(store).production_model(config_path.stem)
    check_store(store)
    tracker = tracker or Tracker.for_store(store)  # a damaged tracking store fails now, not after training
    result = train(spec, callbacks=[tensorboard_callback(Store(store).production_tensorboard(config_path.stem))],
                   checkpoint_path=model_path, verbose=2 if verbose else 0)
    data = load_data(spec)
    tags = {
        "kerasweep.source_run_id": provenance.mlflow_run_id or "",
        "kerasweep.source_sweep": provenance.sweep or "",
        "kerasweep.source_trial": "" if provenance.trial is None else str(provenance.trial),
        "kerasweep.config": str(config_path.resolve()),
        "kerasweep.model_path": str(model_path.resolve()),
        **runtime_tags(result),
    }
    params = {**dict(spec.params), "epochs": spec.epochs, "seed": spec.seed, "data": spec.data, "model": spec.model,
              "task": spec.task}
    run_id, version = tracker.log_production(
        f"{name}-production", config_path.stem, params, result.history, model_path, name, tags,
        example=raw_example(data), labels={"task": spec.task, "classes": [_plain(c) for c in data.classes]},
        columns=data.plan.to_json() if data.plan is not None else None,
        series=data.series.plan.to_json() if data.series is not None else None,
    )
    return ProductionResult(model_path, spec.monitor, result.best_value, result.best_epoch, run_id, name, version)


def _plain(value: object) -> object:
    """A class name as JSON has it (NumPy scalars become Python ones)."""
    return value.item() if hasattr(value, "item") else value


def recent_rows(windows: Any, end: int) -> Any:
    """The raw rows a forecast from row `end` reads, as a user sends them (dates as ISO text)."""
    from kerasweep.trainers.series_plan import shown

    plan = windows.plan
    rows = windows.series.iloc[end - plan.span + 1:end + 1].copy()
    if plan.kind == "datetime":
        rows[plan.time] = [shown(t) for t in rows[plan.time]]
    return rows.reset_index(drop=True)


def raw_example(data: Any) -> Any:
    """Five raw validation rows as a user sends them: a DataFrame of the table's columns as its file holds
    them (text, ints, missing cells), of named feature columns (arrays of rows), or an array (images,
    sequences). The registered model's signature is made from it."""
    if data.series is not None:  # a forecast: the rows before the first validation window, dates as text
        return recent_rows(data.series, data.series.val_ends[0])
    if data.plan is not None:
        return data.raw_val[data.plan.used].head(5)
    if data.features is None:
        return data.x_val[:5]
    import pandas as pd

    return pd.DataFrame(data.x_val[:5].astype("float64"), columns=list(data.features))
