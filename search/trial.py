"""Run one trial from sampled values: resolve the config, train, and say how it ended.

Engines call `run_trial` with the values they sampled and the epoch hooks they need (a pruning
reporter, the MLflow epoch logger). A hook gets `(epoch, metrics)` after every epoch and returns True
to stop the trial early (pruned). Exceptions inside training become a failed outcome with the reason,
so one bad trial never loses the sweep; KeyboardInterrupt still stops everything.
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kerasweep.search.interrupts import raise_if_interrupted
from kerasweep.search.results import TrialState
from kerasweep.search.space import CategoricalParam, Space, resolve_data_path
from kerasweep.search.outages import is_outage
from kerasweep.search.tracking import BACKEND_TAG, DEVICES_TAG, PRECISION_TAG
from kerasweep.trainers.fit import BackupPolicy, ResumePoint, TrainSpec

EpochHook = Callable[[int, dict[str, float]], bool]


@dataclass(frozen=True)
class TrialFiles:
    """Where a training trial writes: its best model, its TensorBoard logs and its resumable copy."""

    checkpoint: Path | None = None
    tensorboard: Path | None = None
    backup: BackupPolicy | None = None


@dataclass
class TrialOutcome:
    """How one trial ended, with what the engine and the tracker need to record it."""

    state: TrialState
    value: float | None = None
    best_epoch: int | None = None
    epochs: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    checkpoint: Path | None = None
    error: str | None = None
    details: str | None = None
    measures: dict[str, float] = field(default_factory=dict)  # catalog.MEASURES of the trained model
    values: tuple[float, ...] | None = None  # every objective's value (several objectives), at the best epoch
    repeat_values: tuple[float, ...] = ()  # budget.repeats > 1: each training's value; `value` is their mean
    runtime: dict[str, str] = field(default_factory=dict)  # what it trained on: tracking.BACKEND_TAG, PRECISION_TAG, ...


def resolve_values(space: Space, sampled: dict[str, Any]) -> dict[str, Any]:
    """The full set of values a trainer gets: fixed settings, then the sampled ones (active only)."""
    return {**space.fixed, **sampled}


def train_spec(space: Space, values: dict[str, Any]) -> TrainSpec:
    """The trainer's plain config for this space and these values (the same object export writes)."""
    base = Path(space.source).parent if space.source else None
    path = resolve_data_path(space.data, base)
    validation = resolve_data_path(space.validation, base) if space.validation else None
    return TrainSpec(
        model=space.model,
        data=str(path) if path is not None else space.data,  # resolved: trials and exports work from any folder
        params=values,
        epochs=space.budget.epochs,
        seed=space.search.seed,
        validation_split=space.validation_split,
        monitor=space.objective.metric,
        direction=space.objective.direction,
        task=space.task,
        target=space.targets,
        validation=str(validation) if validation is not None else None,
        code=space.code or None,  # trials and production training import the user's module from any folder
        fit=space.fit.model_dump(exclude_defaults=True),
        callbacks=space.callbacks,
        columns=dict(space.columns),
        forecast=_forecast_block(space),
        split=space.split,
    )


def data_values(space: Space, largest: bool = False) -> dict[str, Any]:
    """The values that decide what the data is (a forecast's `lookback`: its windows), as the first trial
    has them, or their largest (the longest windows must still fit the series)."""
    if "lookback" in space.params and largest:
        param = space.params["lookback"]
        return {"lookback": max(param.choices) if isinstance(param, CategoricalParam) else param.high}
    values = {**space.first_values(), **space.fixed}
    return {"lookback": values["lookback"]} if "lookback" in values else {}


def _forecast_block(space: Space) -> dict[str, Any]:
    """The space's `forecast:` as the trainer takes it: plain values (a YAML date as its ISO text)."""
    if space.forecast is None:
        return {}
    block = space.forecast.model_dump(exclude_none=True)
    when = block.get("validation_from")
    if isinstance(when, dt.date):
        block["validation_from"] = when.isoformat()
    return block


def _epoch_callback(hooks: Sequence[EpochHook]) -> Any:
    import keras

    class EpochHooks(keras.callbacks.Callback):
        """Hands each finished epoch's metrics to the hooks; any True stops training (pruned)."""

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.stopped = False

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            raise_if_interrupted()
            metrics = {k: float(v) for k, v in (logs or {}).items()}
            decisions = [hook(epoch + 1, metrics) for hook in hooks]  # epochs count from 1
            if any(decisions):
                self.stopped = True
                self.model.stop_training = True

    return EpochHooks()


def run_trial(space: Space, values: dict[str, Any], hooks: Sequence[EpochHook] = (),
              files: TrialFiles | None = None, resume: ResumePoint | None = None, stop_at: int | None = None,
              suggestions: Any = None, debug: bool = False) -> TrialOutcome:
    """Train `values` on the space's model and data; returns complete, pruned or failed.

    `suggestions` answers a define-by-run builder (see `trainers.suggest`) as it asks for its values.
    `resume` and `stop_at` train a slice of the epochs (see `trainers.fit.train`); epochs in the outcome
    count from the start of the whole plan. `files.backup` keeps a resumable copy of the model while it
    trains, for a retry after a crash or failure.
    """
    from kerasweep.trainers.fit import TrainingDiverged, tensorboard_callback, train

    files = files or TrialFiles()
    reporter = _epoch_callback(hooks)
    callbacks = [reporter] + ([tensorboard_callback(files.tensorboard)] if files.tensorboard else [])
    initial_epoch = resume.epoch if resume is not None else 0
    try:
        result = train(train_spec(space, values), callbacks=callbacks, checkpoint_path=files.checkpoint,
                       verbose=2 if debug else 0, run_eagerly=debug, resume=resume, stop_at=stop_at,
                       backup=files.backup, suggestions=suggestions)
    except TrainingDiverged as exc:
        return TrialOutcome(TrialState.FAILED, error=f"diverged: {exc}", details=traceback.format_exc())
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - any error in one trial is that trial's failure
        if is_outage(exc):  # but a full disk or a lost MLflow server is no config's failure: the sweep stops
            raise
        kind = "out of memory" if type(exc).__name__ == "ResourceExhaustedError" else type(exc).__name__
        return TrialOutcome(TrialState.FAILED, error=f"{kind}: {exc}".strip()[:1000], details=traceback.format_exc())
    state = TrialState.PRUNED if reporter.stopped else TrialState.COMPLETE
    values_of_objectives = objective_values(space, result.history, result.best_epoch, result.measures)
    value, repeats = result.best_value, ()
    if state is TrialState.COMPLETE and space.budget.repeats > 1:
        try:
            value, values_of_objectives, repeats = _repeated(space, values, suggestions, stop_at, result, debug)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a repeat's error is the trial's failure
            if is_outage(exc):
                raise
            return TrialOutcome(TrialState.FAILED, error=f"repeat: {type(exc).__name__}: {exc}".strip()[:1000],
                                details=traceback.format_exc())
    return TrialOutcome(
        state,
        value=value,
        best_epoch=initial_epoch + result.best_epoch,
        epochs=initial_epoch + result.epochs_run,
        history=result.history,
        checkpoint=files.checkpoint if state is TrialState.COMPLETE else None,
        measures=result.measures,
        values=values_of_objectives,
        repeat_values=repeats,
        runtime=runtime_tags(result),
    )


def runtime_tags(result: Any) -> dict[str, str]:
    """The backend, dtype policy and device count a trial trained under, as its run records them."""
    return {BACKEND_TAG: result.backend, PRECISION_TAG: result.precision, DEVICES_TAG: str(result.devices)}


def current_runtime() -> dict[str, str]:
    """The same tags for the trial training in this process now (Ray's per-epoch report)."""
    import keras

    from kerasweep.trainers import backend

    return {BACKEND_TAG: keras.backend.backend(), PRECISION_TAG: keras.mixed_precision.global_policy().name,
            DEVICES_TAG: str(backend.devices_in_use())}


def _repeated(space: Space, values: dict[str, Any], suggestions: Any, stop_at: int | None, first: Any,
              debug: bool) -> tuple[float, tuple[float, ...] | None, tuple[float, ...]]:
    """`budget.repeats`: train the same config again from scratch (seed + k, same split, same epochs as
    the first training) and average. The first training is the one that reported each epoch (pruning,
    the logged curve) and whose model is the checkpoint: the one production training reproduces."""
    from kerasweep.trainers.fit import train
    from kerasweep.trainers.suggest import Suggestions

    spec = train_spec(space, values)
    asked = Suggestions.replay({**values, **suggestions.values}) if suggestions is not None else None
    results = [first]
    for k in range(1, space.budget.repeats):
        results.append(train(spec, verbose=2 if debug else 0, run_eagerly=debug, stop_at=stop_at, suggestions=asked,
                             repeat=k))
    bests = tuple(float(r.best_value) for r in results)
    per_objective = [objective_values(space, r.history, r.best_epoch, first.measures) for r in results]
    mean_values = tuple(float(sum(v)) / len(v) for v in zip(*per_objective)) if per_objective[0] is not None else None
    return sum(bests) / len(bests), mean_values, bests


def objective_values(space: Space, history: dict[str, list[float]], best_epoch: int,
                     measures: dict[str, float]) -> tuple[float, ...] | None:
    """Each objective's value for a multi-objective sweep: a training metric at the best epoch (the one the
    first objective picked, whose weights are the trial's model), a measure of that model; None for one."""
    if not space.multi_objective:
        return None
    return tuple(float(history[o.metric][best_epoch]) if o.metric in history else float(measures.get(o.metric, "nan"))
                 for o in space.all_objectives)


def builder_style(space: Space) -> str:
    """"values" for the shipped builders and `(values, input_shape, n_outputs)` functions; "trial" or "hp"
    for a define-by-run builder, which declares its own space by running (this imports the user's module)."""
    from kerasweep.trainers import catalog

    if not catalog.is_user_builder(space.model):
        return "values"
    from kerasweep.trainers.models import resolve_builder
    from kerasweep.trainers.suggest import builder_style as style_of

    return style_of(resolve_builder(space.model))
