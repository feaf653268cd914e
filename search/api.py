"""The Python API: what each CLI command does, as a function a notebook calls (`kerasweep.sweep`, ...).

The CLI (`search/cli.py`) prints over these; they print nothing unless asked (`progress=True`), and return
the library's records: a `SweepResult`, exported paths, a `ProductionResult`, an MLflow pyfunc model.

    import kerasweep
    result = kerasweep.sweep("mlp", trials=2, epochs=2, store="/tmp/s")
    result.best_params, result.trials_dataframe()
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerasweep.search.config import SweepConfig
from kerasweep.search.errors import UserInputError
from kerasweep.search.results import SweepResult
from kerasweep.search.space import Space, load_space


def _store(store: Path | str | None) -> Path:
    """The store a call means: the one given, else `KERASWEEP_STORE` as it is now, else `runs/`."""
    return Path(store) if store is not None else Path(os.environ.get("KERASWEEP_STORE", "runs"))


def _quiet_start() -> None:
    """TensorFlow's C++ start-up lines (CUDA probing) are no Python warnings: they are kept out as the CLI
    keeps them, unless the user set `TF_CPP_MIN_LOG_LEVEL` themselves."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _space(space: str | os.PathLike[str] | Space | dict[str, Any]) -> Space:
    """A space name or path (read as the CLI reads it), a `Space`, or a mapping (checked as a file is)."""
    if isinstance(space, Space):
        return space
    if isinstance(space, dict):
        return Space.model_validate(space)
    return load_space(space)


def prepare(space: str | os.PathLike[str] | Space | dict[str, Any], *, name: str | None = None,
            store: Path | str | None = None, engine: str = "optuna", trials: int | None = None,
            epochs: int | None = None, minutes: float | None = None, sampler: str | None = None,
            pruner: str | None = None, seed: int | None = None, warm_start: str | None = None,
            enqueue: Path | str | None = None, **options: Any) -> SweepConfig:
    """Every check `kerasweep sweep` makes, before anything trains or is written: the space with its
    overrides, warm start and enqueued values, the engine's options, the data, the stores. `options` are
    the CLI's other flags by their Python names (workers, storage, max_failures, checkpoint_every_s, ...)."""
    from kerasweep.search.lifecycle import tracker_of
    from kerasweep.search.sweep import check_stores_agree, make_config
    from kerasweep.search.warm_start import warm_start as first_trials

    store = _store(store)
    parsed = _space(space).with_overrides(trials=trials, epochs=epochs, minutes=minutes, sampler=sampler,
                                          pruner=pruner, seed=seed)
    if warm_start is not None and warm_start == (name or parsed.name):
        raise UserInputError(f"--warm-start: {warm_start!r} is this sweep; re-running it resumes it, or pass "
                             "--name for a new sweep that starts from it")
    started = first_trials(parsed, store, Path(enqueue) if enqueue is not None else None, warm_start)
    config = make_config(parsed, name=name, store=store, engine=engine, first_points=started.points,
                         started_from=started.source, evidence=started.evidence, **options)
    check_stores_agree(config, tracker_of(config))  # a damaged store: one line before TensorFlow loads
    return config


def run(config: SweepConfig, reporter: Any | None = None) -> SweepResult:
    """Run (or resume) a prepared sweep to its budget; the result knows which values were searched."""
    from kerasweep.search.sweep import run_sweep

    result = run_sweep(config, reporter, stores_checked=True)  # prepare checked the stores
    return dataclasses.replace(result, fixed=tuple(config.space.fixed))


def sweep(space: str | os.PathLike[str] | Space | dict[str, Any], *, progress: bool = False,
          export: bool = True, **options: Any) -> SweepResult:
    """Run (or resume) a sweep as `kerasweep sweep` does, and export its best trial (`export=False`: not).

    Args:
        space: a name under spaces/, a path to a space file, a `Space` or a mapping (checked as a file is).
        progress: show the live progress line (in a notebook too), as the CLI does.
        export: write the best trial's config to `<store>/exports/<name>.yaml`, as the CLI does.
        **options: the CLI's flags by their Python names: name, store, engine, trials, epochs, minutes,
            sampler, pruner, seed, warm_start, enqueue, workers, storage, max_failures, ...
    """
    _quiet_start()
    config = prepare(space, **options)
    if progress:
        from kerasweep.search.progress import ConsoleReporter

        with ConsoleReporter(config.name, config.space.budget.trials, config.space.objective.metric) as reporter:
            result = run(config, reporter)
    else:
        result = run(config)
    if export and result.best is not None:
        from kerasweep.search.export import export_best

        export_best(config.name, config.store.root)
    return result


def status(name: str | None = None, store: Path | str | None = None) -> dict[str, SweepResult]:
    """Every sweep in the store (or sweep `name`) with its trials, by name, as `kerasweep status` shows them."""
    return {config.name: result for config, result in sweeps(name, store)}


def sweeps(name: str | None = None, store: Path | str | None = None) -> list[tuple[SweepConfig, SweepResult]]:
    """Each sweep in the store (or sweep `name`) as its config and its trials: what `status` prints from."""
    from kerasweep.search.sweep import list_sweeps, load_config, sweep_results

    store = _store(store)
    found = []
    for sweep_name in [name] if name else list_sweeps(store):
        config = load_config(sweep_name, store)
        found.append((config, dataclasses.replace(sweep_results(config), fixed=tuple(config.space.fixed))))
    return found


def export(name: str, store: Path | str | None = None, output: Path | str | None = None, top: int = 1,
           where: Sequence[str] = ()) -> list[Path]:
    """Write the best `top` trials of sweep `name` as configs `train` takes (`kerasweep export`); best first."""
    from kerasweep.search.export import export_best

    return export_best(name, _store(store), output, top, where)


def train(config: Path | str, store: Path | str | None = None, epochs: int | None = None,
          output: Path | str | None = None, verbose: bool = False) -> Any:
    """Train an exported config for production, save, log and register it (`kerasweep train`); returns
    a `ProductionResult` (model path, best value, run id, registered name and version).

    The file, the store and the tracking store are checked before TensorFlow loads."""
    from kerasweep.search.export import load_export
    from kerasweep.search.store import check_store
    from kerasweep.search.tracking import Tracker

    store = _store(store)
    load_export(Path(config))
    check_store(store)
    tracker = Tracker.for_store(store)
    from kerasweep.search.production import train_config
    from kerasweep.search.quiet import import_keras_quietly

    _quiet_start()
    import_keras_quietly()
    return train_config(Path(config), store, epochs, Path(output) if output is not None else None, verbose, tracker)


def load_model(name: str, version: int | str | None = None, store: Path | str | None = None) -> Any:
    """A registered model as MLflow serves it (raw rows in, answers in your terms out): version `version`
    of `name`, else its latest, from the store's registry (or `MLFLOW_TRACKING_URI`'s server)."""
    import mlflow

    from kerasweep.search.tracking import tracking_uri_for

    saved = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(saved or tracking_uri_for(_store(store)))
    try:
        return mlflow.pyfunc.load_model(f"models:/{name}/{version if version is not None else 'latest'}")
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)  # set_tracking_uri sets it: it would steer later stores
