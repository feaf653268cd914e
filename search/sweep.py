"""`SweepConfig` and `run_sweep`: check everything, open the MLflow parent run, let the engine work.

The order matters: every check on user input (space, flags, data, store, name) runs before anything
is written or trained, so a typo costs nothing. Re-running the same sweep name resumes it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kerasweep.search.config import DEFAULT_STORE, SweepConfig
from kerasweep.search.engines import ENGINES, engines_taking, get_engine
from kerasweep.search.errors import KerasweepError, SweepAborted, TrackingUnreachable, UserInputError
from kerasweep.search.interrupts import clear_interrupt
from kerasweep.search.lifecycle import out_of_time, tracker_of
from kerasweep.search.results import SweepResult
from kerasweep.search.space import CHECKED, Space
from kerasweep.search.outages import is_outage, outage
from kerasweep.search.store import Store, check_store
from kerasweep.search.tracking import TRIAL_TAG, Tracker, artifact_root_for, tracking_uri_for
from kerasweep.trainers import catalog
from kerasweep.trainers.backend import backend_problem

__all__ = ["DEFAULT_STORE", "SweepConfig", "load_config", "make_config", "run_sweep", "sweep_results"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # matched whole (fullmatch: no trailing newline)
MAX_NAME = 100  # a name becomes file and folder names (sweeps/<name>.json, checkpoints/<name>/trial-N/...)


def make_config(space: Space, name: str | None = None, store: Path | str | None = None, check_data_files: bool = True,
                **options: Any) -> SweepConfig:
    """Build and check a SweepConfig (name, store, engine and its options, data) without writing anything.

    `check_data_files=False` skips loading the data (status and export of a sweep that already ran:
    they read the stores only, and loading a bundled dataset costs a second).

    `options` are SweepConfig's own fields (engine, max_failures, debug, ...) and the engine's options
    (workers and storage for optuna, cpus/gpus per trial and address for ray), flat; an engine option
    passed to an engine that has no such option is an error naming the engines that take it.
    """
    name = name or space.name
    check_name(name)
    problem = backend_problem()
    if problem:
        raise UserInputError(problem)
    store_path = Path(store) if store is not None else DEFAULT_STORE
    check_store(store_path)
    engine_name = options.pop("engine", "optuna")
    if engine_name not in ENGINES:
        raise UserInputError(f"--engine: unknown engine {engine_name!r}; expected one of {', '.join(ENGINES)}")
    engine = get_engine(engine_name)
    allowed = engine.SAMPLERS
    if space.search.sampler is not None and space.search.sampler not in allowed:
        raise UserInputError(
            f"--sampler / search.sampler: {space.search.sampler!r} does not run on engine {engine_name!r}; "
            f"expected one of {', '.join(allowed)} (default {allowed[0]})"
        )
    own = {f.name for f in dataclasses.fields(SweepConfig)}
    engine_options = {k: v for k, v in options.items() if k not in own and v is not None}
    for option in engine_options:
        if option not in {f.name for f in dataclasses.fields(engine.Options)}:
            takers = engines_taking(option)
            flag = "--" + option.replace("_", "-")
            if not takers:
                raise TypeError(f"make_config: unknown option {option!r}")
            raise UserInputError(f"{flag}: engine {engine_name!r} does not take it; "
                                 f"{' and '.join(takers)} {'does' if len(takers) == 1 else 'do'}")
    settings = {k: v for k, v in options.items() if k in own and v is not None}
    chosen = engine.Options(**engine_options)
    problems = engine.check(space, chosen)
    if problems:
        raise UserInputError("\n".join(problem if problem.startswith("--") else f"{space.source or 'space'}: {problem}"
                                       for problem in problems))
    if space.search.sampler == "grid" and space.grid_size() < space.budget.trials:
        space = space.with_overrides(trials=space.grid_size())  # every config once: the grid is the budget
    report = None
    if check_data_files:
        check_data(space)
        from kerasweep.search.data_report import data_report

        report = data_report(space)
    return SweepConfig(
        space=space,
        name=name,
        engine=engine_name,
        store=Store(store_path),
        options=chosen,
        tracking_uri=tracking_uri_for(store_path),
        artifact_root=artifact_root_for(store_path),
        report=report,
        **settings,
    )


def check_name(name: str) -> None:
    """A sweep name is a safe file name: letters, digits, '_', '-', '.', not starting with a dot, short."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserInputError(f"--name: {name!r} is not a valid sweep name; use letters, digits, '_', '-', '.' "
                             "(no spaces, slashes or line breaks; not starting with '.')")
    if len(name) > MAX_NAME:
        raise UserInputError(f"--name: a sweep name may be at most {MAX_NAME} characters, got {len(name)}")


def check_data(space: Space) -> None:
    """Load the space's data once (NumPy only), as its trials will, so that bad files fail before any training."""
    from kerasweep.search.trial import builder_style, data_values, resolve_values, train_spec
    from kerasweep.trainers.data import DataError
    from kerasweep.trainers.fit import UnreadValues, check_builder_reads, load_data
    from kerasweep.trainers.fit_options import FitOptionError, class_weights, user_callbacks

    try:
        data = load_data(train_spec(space, data_values(space)))
        if space.task == "forecast":  # the longest windows a trial may ask for fit the series too
            load_data(train_spec(space, data_values(space, largest=True)))
        if catalog.is_user_builder(space.model) and builder_style(space) == "values":
            # a user's builder is built once, untrained: a param it never reads (a typo) is bad input now
            check_builder_reads(train_spec(space, resolve_values(space, space.first_values())))
        class_weights(space.fit.class_weight, data)  # names the data's classes
        user_callbacks(space.callbacks)  # importable, and Keras callbacks
    except FitOptionError as exc:
        raise UserInputError(f"{space.source or 'space'}: {exc}") from None
    except DataError as exc:
        raise UserInputError(f"{space.source or 'space'}: data: {exc}") from None
    except UnreadValues as exc:
        raise UserInputError(f"{space.source or 'space'}: params: {exc}") from None


def _write_record(config: SweepConfig) -> None:
    """Remember which engine, options and space a sweep name belongs to (status and export read this)."""
    record = {"name": config.name, "engine": config.engine, "options": dataclasses.asdict(config.options),
              "space": config.space.model_dump()}
    path = config.store.record(config.name)
    if path.exists():
        previous = _read_record(path)
        if previous["engine"] != config.engine:
            raise UserInputError(
                f"--engine: sweep {config.name!r} was run with engine {previous['engine']!r}; "
                f"pass --engine {previous['engine']} to resume it, or --name for a new sweep"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str))


def load_config(name: str, store: Path | str | None = None) -> SweepConfig:
    """The SweepConfig of an existing sweep in the store (for status and export)."""
    store_path = Path(store) if store is not None else DEFAULT_STORE
    path = Store(store_path).record(name)
    if not path.exists():
        known = list_sweeps(store_path)
        raise UserInputError(f"sweep {name!r} not found in store {store_path}/; known sweeps: {', '.join(known) or 'none'}")
    record = _read_record(path)
    try:
        space = Space.model_validate(record["space"], context={CHECKED: True})  # checked when it ran
    except ValidationError as exc:
        raise UserInputError(f"{path}: space: not a valid space ({str(exc).splitlines()[0]}); "
                             "restore the file, or re-run the sweep from its space file to rewrite it") from None
    # "storage": the record of a sweep run before engines kept their own options
    options = record.get("options") or ({"storage": record["storage"]} if record.get("storage") else {})
    return make_config(space, name=name, store=store_path, check_data_files=False, engine=record["engine"], **options)


def _read_record(path: Path) -> dict[str, Any]:
    """A sweep record as written by `_write_record`; a damaged one is one line naming the file."""
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: not a readable sweep record ({exc}); re-run the sweep from its space file "
                             "to rewrite it") from None
    missing = [key for key in ("engine", "space") if not isinstance(record, dict) or key not in record]
    if missing:
        raise UserInputError(f"{path}: sweep record lacks {', '.join(missing)}; re-run the sweep from its space "
                             "file to rewrite it")
    return record


def list_sweeps(store: Path | str | None = None) -> list[str]:
    """Names of the sweeps recorded in a store."""
    folder = Store(Path(store) if store is not None else DEFAULT_STORE).records
    return sorted(p.stem for p in folder.glob("*.json"))


def sweep_results(config: SweepConfig) -> SweepResult:
    """Every trial of a sweep so far, read from its engine's storage."""
    return get_engine(config.engine).results(config)


def run_sweep(config: SweepConfig, reporter: Any | None = None, stores_checked: bool = False) -> SweepResult:
    """Run (or resume) a sweep to its budget; returns all its trials.

    `reporter` receives `resumed(result)`, `already_done(result)`, `progress(result)` and
    `finished(result)`; the CLI passes a live console view, notebooks may pass None.
    `stores_checked`: the caller ran `check_stores_agree` just now (the CLI does, before TensorFlow loads).
    The parent run ends FINISHED, KILLED (Ctrl-C, SIGTERM) or FAILED (with the reason); never RUNNING.
    """
    clear_interrupt()  # a Ctrl-C of an earlier sweep in this process (a notebook's) was handled
    engine = get_engine(config.engine)
    config.store.root.mkdir(parents=True, exist_ok=True)
    tracker = tracker_of(config)
    if not stores_checked:
        check_stores_agree(config, tracker)  # before the parent run is reopened: a refused start changes nothing
    _write_record(config)
    settings = {"engine": config.engine, "space": config.space.name, "budget_trials": config.space.budget.trials,
                "debug": str(config.debug).lower(), **(config.started_from or {})}
    space_file = Path(config.space.source) if config.space.source and Path(config.space.source).exists() else None
    parent = tracker.start_sweep(config.space.name, config.name, space_file, settings)
    if config.report is not None:
        tracker.log_data_report(parent, config.report.text(), config.report.warnings, config.report.baseline)
    minutes = config.space.budget.minutes
    config = dataclasses.replace(config, parent_run_id=parent, tracking_uri=tracker.tracking_uri,
                                 deadline=time.time() + 60 * minutes if minutes else None)

    status, reason, after = "FAILED", None, None
    try:
        before = engine.results(config)
        if before.done >= config.space.budget.trials:
            after, status = before, "FINISHED"
            if reporter:
                reporter.already_done(before)
            return before
        if before.trials and reporter:
            reporter.resumed(before)
        engine.run(config, reporter.progress if reporter else (lambda result: None))
        after = engine.results(config)
        problem = shortfall(config, after)
        if problem:
            raise SweepAborted(problem)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except Exception as exc:
        error = exc if isinstance(exc, KerasweepError) else outage(config.store, config.tracking_uri, exc)
        reason = str(error) if error is not None else f"{type(exc).__name__}: {exc}"
        if isinstance(error, TrackingUnreachable):
            status = "UNREACHABLE"
        if error is None or error is exc:
            raise
        raise error from None  # a full disk, an MLflow server gone: one line
    finally:
        _finish_unless_unreachable(config, tracker, after, status, reason, engine)
    if reporter:
        reporter.finished(after)
    return after


def shortfall(config: SweepConfig, result: SweepResult) -> str | None:
    """Why a sweep whose engine returned is short of its budget, or None: it never ends quietly short of it
    (a command that exited 0 at "10/12 trials, 2 running" left a dead command's trials RUNNING)."""
    budget = config.space.budget.trials
    if result.done >= budget or out_of_time(config):
        return None
    counts = result.counts
    running = f", {counts['running']} still running in a command this one cannot see end" if counts["running"] else ""
    return (f"the sweep stopped at {result.done} of {budget} trials ({counts['failed']} failed{running}); re-run the "
            "same command to continue")


def check_stores_agree(config: SweepConfig, tracker: Tracker) -> None:
    """Refuse a sweep whose MLflow parent run and engine state disagree about which trials exist.

    A reset or replaced Optuna database (or Ray or KerasTuner folder) would otherwise restart the
    sweep at trial 0 under the old parent run: two runs per trial number and an overwritten export.
    """
    check = getattr(get_engine(config.engine), "check_stores", None)
    if check is None:
        return
    parent = tracker.find_sweep_run(config.space.name, config.name)
    logged = {int(r.data.tags[TRIAL_TAG]) for r in tracker.trial_runs(parent) if TRIAL_TAG in r.data.tags} \
        if parent else set()
    problem = check(config, logged, parent is not None)
    if problem:
        raise UserInputError(f"sweep {config.name!r}: {problem}")


def _finish_unless_unreachable(config: SweepConfig, tracker: Tracker, result: SweepResult | None, status: str,
                               reason: str | None, engine: Any) -> None:
    """Close the parent run, but not on an MLflow server that is gone (each call would retry for minutes) nor
    when its last rows do not fit on a full disk: the next start closes it then."""
    if status == "UNREACHABLE":
        return
    try:
        _finish(config, tracker, result, status, reason, engine)
    except Exception as exc:
        if not is_outage(exc):
            raise


def _finish(config: SweepConfig, tracker: Tracker, result: SweepResult | None, status: str, reason: str | None,
            engine: Any) -> None:
    """Close the parent run: plots of all trials, counts per state, the best trial, how it ended."""
    if result is None:
        try:
            result = engine.results(config)
        except Exception:  # noqa: BLE001 - an unreadable engine store must not leave the parent RUNNING
            result = SweepResult(config.name, config.engine, config.space.objective.direction,
                                 config.space.budget.trials, ())
    if result.trials:
        from kerasweep.search.plots import write_plots

        with tempfile.TemporaryDirectory() as folder:
            if write_plots(result, config.space, Path(folder)):
                tracker.log_plots(config.parent_run_id, Path(folder))
    if config.space.multi_objective:  # the front's trials, findable in the UI by tag
        from kerasweep.search.tracking import PARETO_TAG

        for trial in result.pareto_front():
            if trial.mlflow_run_id:
                tracker.tag(trial.mlflow_run_id, PARETO_TAG, "true")
    best = result.best
    tracker.finish_sweep(
        config.parent_run_id,
        result.counts,
        config.space.objective.metric,
        best.value if best else None,
        best.number if best else None,
        status=status,
        reason=reason,
    )
