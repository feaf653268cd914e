"""KerasTuner engine: the same space on KerasTuner's oracles (Hyperband, RandomSearch, BayesianOptimization).

The only place that translates a `Space` into KerasTuner's terms: `HyperParameters` with log
sampling, steps and `when:` conditions as (nested) `conditional_scope`s, and an oracle chosen by the
space's sampler. KerasTuner drives the search (its oracle state and trial files live under
`<store>/keras_tuner/<sweep>/`, so re-running resumes with `overwrite=False`); each trial trains with
the same `run_trial` as the other engines.

Hyperband trains a config in rounds (2 epochs, then up to 5, then 15, ...). Each round is a KerasTuner
trial; kerasweep logs each as its own MLflow trial run: a round that stops short of the budget's
epochs is `pruned`, one that reaches it `complete`. A promoted round continues from the previous
round's saved model (weights and optimizer state), and its MLflow run starts with the previous
round's curve, so every run shows the whole training of its model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerasweep.search.engines.internals import defaults_first, keras_tuner_tracebacks
from kerasweep.search.errors import SweepAborted, UserInputError
from kerasweep.search.interrupts import deferred_interrupts, interruptible, stop_reason
from kerasweep.search.lifecycle import FailureStreak, Progress, TrialLife, TrialStart, out_of_time, results_from_mlflow
from kerasweep.search.results import SweepResult, TrialState
from kerasweep.search.space import CategoricalParam, FloatParam, IntParam, Space
from kerasweep.search.store import folder_agrees_with_mlflow
from kerasweep.search.trial import TrialFiles, builder_style, resolve_values, run_trial
from kerasweep.trainers.fit import BackupPolicy, ResumePoint, latest_backup
from kerasweep.trainers.suggest import Suggestions

if TYPE_CHECKING:
    from kerasweep.search.config import SweepConfig
    from kerasweep.search.engines import ProgressCallback

KT_ID_TAG, CONTINUES_TAG = "kerasweep.keras_tuner_trial", "kerasweep.continues_trial"
SAMPLERS = ("hyperband", "random", "bayesian")  # KerasTuner's oracles; the first is the default
DEFAULT_PRUNER = None  # the Hyperband oracle stops weak configs itself


@dataclass(frozen=True)
class Options:
    """The keras-tuner engine has no options of its own: KerasTuner runs one trial at a time."""


def describe(options: Options) -> str:
    return "one trial at a time"

ROUND_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")
CHECKPOINT = "model.keras"


# --- translating the space ----------------------------------------------------------------------
def check(space: Space, options: Options) -> list[str]:
    """What KerasTuner cannot express in this space (one line per problem, naming the field)."""
    problems = []
    try:
        style = builder_style(space)
    except KeyError as exc:  # a builder that cannot be imported
        problems.append(f"model: {exc.args[0]}")
        style = "values"
    if space.multi_objective:
        from kerasweep.search.engines import engines_with

        problems.append(f"objective: several objectives run on engine {' and '.join(engines_with('MULTI_OBJECTIVE'))}; "
                        "KerasTuner's oracles rank trials by one")
    if style == "trial":
        problems.append("model: a builder of `trial` speaks Optuna's API, which engine 'keras-tuner' does not; "
                        "pass --engine optuna or ray (a builder of `hp` runs on all three)")
    for name, param in space.params.items():
        if isinstance(param, CategoricalParam) and len({type(c) for c in param.choices}) > 1:
            problems.append(f"params.{name}.choices: KerasTuner needs choices of one type (all numbers, all "
                            f"strings or all booleans), got {param.choices}; use --engine optuna or ray")
    return problems


def hyperparameters(space: Space) -> Any:
    """KerasTuner `HyperParameters` for the space: `when:` becomes nested conditional scopes."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for name, param in space.params.items():
        with contextlib.ExitStack() as scopes:
            for parent, wanted in (param.when or {}).items():
                scopes.enter_context(hp.conditional_scope(parent, wanted if isinstance(wanted, list) else [wanted]))
            _declare(hp, name, param)
    return hp


def _declare(hp: Any, name: str, param: Any) -> None:
    if isinstance(param, FloatParam):
        hp.Float(name, param.low, param.high, step=param.step, sampling="log" if param.log else "linear",
                 default=param.default)
    elif isinstance(param, IntParam):
        # KerasTuner's step multiplies under log sampling; a space's step always adds (as in Optuna)
        hp.Int(name, param.low, param.high, step=None if param.log else (param.step or 1),
               sampling="log" if param.log else "linear", default=param.default)
    elif isinstance(param, CategoricalParam):
        hp.Choice(name, param.choices, default=param.default)


def sampled_values(space: Space, hp_values: dict[str, Any]) -> dict[str, Any]:
    """The space's active params out of a KerasTuner trial's values (its round keys dropped)."""
    values: dict[str, Any] = {}
    for name, param in space.params.items():
        if name in hp_values and space.is_active(name, values):
            value = hp_values[name]
            if isinstance(param, CategoricalParam):  # KerasTuner hands booleans back as 0/1: the declared choice
                value = next((c for c in param.choices if c == value and type(c) is type(value)),
                             next((c for c in param.choices if c == value), value))
            values[name] = value
    return values


def asked_through(hp: Any) -> Suggestions:
    """A builder of `hp` answered by KerasTuner's own `HyperParameters` of this trial, remembering which
    names this trial's model asked for: KerasTuner samples every name it knows, also those a smaller
    model never reads (a third layer's width with two layers), and those must not be logged."""

    def ask(kind: str, name: str, declared: dict[str, Any]) -> Any:
        sampling = "log" if declared.get("log") else "linear"
        if kind == "int":
            step = None if declared.get("log") else declared["step"]
            return hp.Int(name, declared["low"], declared["high"], step=step, sampling=sampling,
                          default=declared.get("default"))
        if kind == "float":
            return hp.Float(name, declared["low"], declared["high"], step=declared.get("step"), sampling=sampling,
                            default=declared.get("default"))
        if declared["choices"] == [False, True]:
            return hp.Boolean(name, default=bool(declared.get("default")))
        return hp.Choice(name, declared["choices"], default=declared.get("default"))

    return Suggestions(ask)


def make_oracle(space: Space, first_points: tuple[dict[str, Any], ...] = ()) -> Any:
    """The space's oracle: hyperband (default; the budget's epochs as max_epochs), random or bayesian.

    The budget is kerasweep's (complete + pruned trials), so the oracles get no trial limit of their
    own; Hyperband runs iteration after iteration until the budget stops it.
    """
    import keras_tuner as kt

    name = space.search.sampler or "hyperband"
    common = {
        "objective": kt.Objective(space.objective.metric, "max" if space.objective.direction == "maximize" else "min"),
        "hyperparameters": hyperparameters(space),
        "allow_new_entries": False,
        "seed": space.search.seed,
        "max_consecutive_failed_trials": 10**9,  # kerasweep's own rule stops a failing sweep, with a message
    }
    if builder_style(space) == "hp":  # the builder declares its space by running: learn it as KerasTuner does
        from kerasweep.trainers.models import build_by_running

        for fixed, value in space.fixed.items():
            common["hyperparameters"].Fixed(fixed, value)
        build_by_running(space.model, common["hyperparameters"])
        common["allow_new_entries"] = True  # names first asked in later trials (more layers) join the space
    points = [point for point in (*first_points, space.default_values()) if point]
    if name == "hyperband":
        oracle = defaults_first(kt.oracles.HyperbandOracle)(
            max_epochs=space.budget.epochs, factor=3, hyperband_iterations=None, **common)
    elif name == "bayesian":
        oracle = defaults_first(kt.oracles.BayesianOptimizationOracle)(max_trials=None, **common)
    else:
        oracle = defaults_first(kt.oracles.RandomSearchOracle)(max_trials=None, **common)
    oracle.first_points = points
    return oracle


# --- running --------------------------------------------------------------------------------------
class _BudgetMet(Exception):
    """Raised between trials to end KerasTuner's search loop once the budget is met."""


def _tuner_class() -> type:
    from keras_tuner.engine.base_tuner import BaseTuner

    class SweepTuner(BaseTuner):
        """KerasTuner's search loop around kerasweep's trial: MLflow runs, budget, failure rule."""

        def __init__(self, sweep: SweepConfig, oracle: Any, on_progress: ProgressCallback) -> None:
            self.sweep = sweep
            self.life = TrialLife(sweep)
            self.progress = Progress(on_progress, lambda: results(sweep))
            self.streak = FailureStreak(sweep.max_failures_in_a_row)
            self.current_run: str | None = None
            with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
                super().__init__(oracle, hypermodel=None, directory=str(sweep.store.keras_tuner),
                                 project_name=sweep.name, overwrite=False)
            from kerasweep.search.tracking import TRIAL_TAG

            runs = sorted(self.life.tracker.trial_runs(sweep.parent_run_id), key=lambda r: int(r.data.tags[TRIAL_TAG]))
            self.next_number = 1 + max((int(r.data.tags[TRIAL_TAG]) for r in runs), default=-1)
            # KerasTuner trial id -> (number, run id) of its latest MLflow run (a retry gets a new run)
            self.run_of = {r.data.tags[KT_ID_TAG]: (int(r.data.tags[TRIAL_TAG]), r.info.run_id)
                           for r in runs if KT_ID_TAG in r.data.tags}

        def pre_create_trial(self) -> None:
            counted = sum(t.status == "COMPLETED" for t in self.oracle.trials.values())
            if counted >= self.sweep.space.budget.trials or (counted and out_of_time(self.sweep)):
                raise _BudgetMet

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            space, sweep = self.sweep.space, self.sweep
            hp_values = trial.hyperparameters.values
            by_running = builder_style(space) == "hp"  # the builder asks KerasTuner's hp for its values itself
            asked = asked_through(trial.hyperparameters) if by_running else None
            values = dict(space.fixed) if by_running else resolve_values(space, sampled_values(space, hp_values))
            stop_at = int(hp_values.get("tuner/epochs", space.budget.epochs))
            start = self.start_of(trial, values, stop_at)
            if by_running and start.resume is not None and start.source_run:
                # its model is loaded, not built: the builder asks for nothing, so the values are the ones
                # the run it continues trained with (a promoted round's parent, a retry's failed attempt)
                inherited = self.life.tracker.trial_params(start.source_run)
                start = dataclasses.replace(start, values={**inherited, **values})
            run_id = self.life.open(start)
            self.current_run, self.run_of[trial.trial_id] = run_id, (start.number, run_id)
            files = TrialFiles(checkpoint=self.checkpoint(trial.trial_id),
                               tensorboard=sweep.store.tensorboard(sweep.name, f"trial-{start.number}"),
                               backup=BackupPolicy(self.backups(trial.trial_id), sweep.checkpoint_every_s))
            with interruptible():  # Ctrl-C is held everywhere else (store and oracle files)
                outcome = run_trial(space, values, hooks=[self.life.epoch_logger(run_id)], files=files,
                                    resume=start.resume, stop_at=stop_at, suggestions=asked, debug=sweep.debug)
            if asked is not None:
                self.oracle.update_space(trial.hyperparameters)  # names first asked now (a loop's extra layers)
            if outcome.state is not TrialState.FAILED:  # a Hyperband round short of the budget is a pruned trial
                state = TrialState.PRUNED if stop_at < space.budget.epochs else TrialState.COMPLETE
                outcome = dataclasses.replace(outcome, state=state,
                                              checkpoint=files.checkpoint if state is TrialState.COMPLETE else None)
            # a pruned round's model stays for the round promoted from it; a failed trial's copy for its retry
            self.life.close(run_id, outcome, asked=asked, files=files, keep_checkpoint=outcome.state is TrialState.PRUNED,
                            retry_coming=bool(sweep.max_failures))
            self.current_run = None
            self.streak.add(outcome.error)
            if outcome.state is TrialState.FAILED:
                raise RuntimeError(outcome.error)  # KerasTuner retries it (--max-failures) or records it failed
            return {space.objective.metric: outcome.value}

        def start_of(self, trial: Any, values: dict[str, Any], stop_at: int) -> TrialStart:
            """Where a KerasTuner trial starts: the round it was promoted from, or its own backup (a retry)."""
            hp_values = trial.hyperparameters.values
            initial_epoch = int(hp_values.get("tuner/initial_epoch", 0))
            previous = hp_values.get("tuner/trial_id")
            number, self.next_number = self.next_number, self.next_number + 1
            tags = {KT_ID_TAG: trial.trial_id, **({CONTINUES_TAG: str(previous)} if previous is not None else {})}
            resume, source_run, retried = None, None, self.run_of.get(trial.trial_id)
            if previous is not None and initial_epoch > 0 and self.checkpoint(previous).exists():
                resume = ResumePoint(self.checkpoint(previous), initial_epoch)
                source_run = self.run_of.get(previous, (0, None))[1]
            if retried is not None:  # KerasTuner retries a failed or crashed trial under its id
                found = latest_backup(self.backups(trial.trial_id))
                if found is not None and (resume.epoch if resume else 0) < found.epoch < stop_at:
                    resume, source_run = found, retried[1]
            return TrialStart(number, values, retry_of=retried[0] if retried else None, resume=resume,
                              source_run=source_run, tags=tags)

        def on_trial_end(self, trial: Any) -> None:
            with contextlib.redirect_stdout(io.StringIO()):  # "Trial 3 failed 1 times. 1 retries left."
                super().on_trial_end(trial)
            self.progress()
            self.streak.check()

        def backups(self, trial_id: str) -> Path:
            """A trial's resumable copy while it trains, which KerasTuner's retry of it continues."""
            return Path(self.get_trial_dir(trial_id)) / "resume"

        def checkpoint(self, trial_id: str) -> Path:
            """A trial's saved model: the MLflow artifact of a complete trial, the start of the next round."""
            return Path(self.get_trial_dir(trial_id)) / CHECKPOINT

        @deferred_interrupts()
        def interrupted(self, reason: str) -> None:
            """Ctrl-C: the running trial ends failed in both KerasTuner's files and MLflow."""
            self.life.abandon(self.current_run, reason)
            for trial in list(self.oracle.ongoing_trials.values()):
                trial.status, trial.message = "FAILED", reason
                with contextlib.redirect_stdout(io.StringIO()):
                    self.oracle.end_trial(trial)
            self.save()

        def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
            """Not used: `run_trial` saves each trial's model itself."""

        def load_model(self, trial: Any) -> Any:
            import keras

            from kerasweep.trainers import metrics  # noqa: F401 - registers the metrics a saved model may carry

            return keras.models.load_model(self.checkpoint(trial.trial_id))

    return SweepTuner


def run(sweep: SweepConfig, on_progress: ProgressCallback) -> None:
    """Run KerasTuner's search until the budget of complete + pruned trials is met (resuming)."""
    from kerasweep.search.quiet import import_keras_quietly

    import_keras_quietly()  # before KerasTuner, which imports Keras and its backend
    from kerasweep.trainers.fit import configure_runtime

    keras_tuner_tracebacks(shown=sweep.verbose)  # on by default: every failed trial's traceback over the progress line
    configure_runtime(parallel_trials=1)
    TrialLife(sweep).fail_orphans()  # a crash left its trial's run RUNNING; KerasTuner retries it, as a new run
    oracle = make_oracle(sweep.space, sweep.first_points)
    oracle.max_retries_per_trial = sweep.max_failures
    try:
        tuner = _tuner_class()(sweep, oracle, on_progress)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise UserInputError(f"{sweep.store.keras_tuner / sweep.name}: KerasTuner cannot reload this sweep ({exc}); "
                             "remove that folder to start over, or pass a new --name") from None
    oracle.verbose = 0  # kerasweep shows progress; KerasTuner's tables would interleave with it
    try:
        with deferred_interrupts():  # let through only while a trial trains (`run_trial`)
            tuner.search()
        counted = sum(t.status == "COMPLETED" for t in tuner.oracle.trials.values())
        raise SweepAborted(f"keras-tuner: the oracle has no untried values left after {counted} of "
                           f"{sweep.space.budget.trials} trials; widen the space or lower --trials")
    except _BudgetMet:
        pass
    except KeyboardInterrupt:
        tuner.interrupted(stop_reason())
        raise


def check_stores(sweep: SweepConfig, logged: set[int], parent_exists: bool) -> str | None:
    """Whether the KerasTuner oracle folder and MLflow (`logged`: trial numbers with a run) agree."""
    return folder_agrees_with_mlflow(sweep.store.keras_tuner / sweep.name, "KerasTuner oracle folder", logged,
                                     parent_exists)


def results(sweep: SweepConfig) -> SweepResult:
    """The sweep's trials as recorded in MLflow (KerasTuner's rounds, one trial each)."""
    return results_from_mlflow(sweep)

