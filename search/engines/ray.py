"""Ray Tune engine: the same space on a local Ray or a Ray cluster of GPU workers.

The only place that translates a `Space` into Ray Tune's terms: `OptunaSearch` over a define-by-run
space (so conditionals stay conditional, same sampler as the Optuna engine), a scheduler for early
stopping with epochs as the time attribute, and resources per trial. Trials run in reused actors, so
TensorFlow and the dataset load once per worker process, not once per trial.

MLflow is written from the driver by `TrackingCallback` (a Tune callback), so workers on other
machines need no access to the tracking store; checkpoints travel through Ray's storage path. The
callback keeps one nested run per trial keyed by Ray's trial id, so concurrent trials never share a
run and a restored experiment finds its runs again.

A training trial reports a resumable copy of its model as a Tune checkpoint at most every
`--checkpoint-every` seconds, so a retried (`--max-failures`) or restored trial continues from that
epoch; in MLflow the attempt that failed ends failed and the retry is a new run, as on the Optuna engine.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerasweep.search.engines.internals import ray_loopback_only, reattach_callback
from kerasweep.search.errors import SweepAborted, TrialFailed, UserInputError
from kerasweep.search.interrupts import stop_on_sigterm, stop_reason
from kerasweep.search.lifecycle import FailureStreak, Progress, TrialLife, TrialStart, results_from_mlflow
from kerasweep.search.results import SweepResult, TrialState
from kerasweep.search.space import Space
from kerasweep.search.store import folder_agrees_with_mlflow
from kerasweep.search.tracking import TRIAL_TAG
from kerasweep.search.trial import TrialOutcome, current_runtime
from kerasweep.trainers.fit import ResumePoint

if TYPE_CHECKING:
    from kerasweep.search.config import SweepConfig
    from kerasweep.search.engines import ProgressCallback

SAMPLERS = ("tpe", "random", "cmaes", "qmc", "nsga2", "grid")  # through OptunaSearch; the first is the default
DEFAULT_PRUNER = "successive_halving"  # ASHA
MULTI_OBJECTIVE = True  # several objectives: OptunaSearch with a list of metrics and modes


@dataclass(frozen=True)
class Options:
    """The ray engine's own options (`--cpus-per-trial`, `--gpus-per-trial`, `--address`)."""

    cpus_per_trial: float = 1.0  # CPUs reserved per trial (2 cores = 2 trials at once)
    gpus_per_trial: float = 0.0  # fractions pack several small trials on one GPU; >1 trains with MirroredStrategy
    address: str | None = None  # an existing Ray cluster; None: RAY_ADDRESS, else a private local Ray


def describe(options: Options) -> str:
    return f"{options.cpus_per_trial:g} CPU + {options.gpus_per_trial:g} GPU per trial"


def check(space: Space, options: Options) -> list[str]:
    problems = [f"--{name.replace('_', '-')}: must be >= 0, got {value}"
                for name, value in (("cpus_per_trial", options.cpus_per_trial),
                                    ("gpus_per_trial", options.gpus_per_trial)) if value < 0]
    from kerasweep.search.engines._optuna_space import sampler_problems  # imports Optuna: only when checking
    from kerasweep.search.trial import builder_style

    if builder_style(space) == "hp":
        from kerasweep.trainers.models import hypermodel_of, overridden_fit

        if overridden_fit(hypermodel_of(space.model)) is not None:  # its fit asks for values while training
            problems.append(f"model: {space.model} overrides HyperModel.fit, whose values the ray engine cannot ask "
                            "for (it asks on the driver, before training); use --engine optuna or keras-tuner")
    return problems + sampler_problems(space)

FINAL = "kerasweep_final"  # marks the one result a finished trial reports after its last epoch
RAY_ID_TAG, NODE_TAG = "kerasweep.ray_trial_id", "kerasweep.node"
EPOCH, NODE = "epoch", "node_id"
RUNTIME = "runtime_"  # the final result's backend and precision: runtime_<tag> (see trial.runtime_tags)
REPEAT = "repeat_value_"  # budget.repeats: the final result's value of each training, numbered from 1


# --- translating the space ------------------------------------------------------------------------
def define_by_run(trial: Any, space: Space) -> None:
    """OptunaSearch's define-by-run space: the same conditional sampling as the Optuna engine. A builder
    of `trial` or `hp` declares its own: it is run here, on the driver, to ask for its values (the
    model it builds is thrown away; the worker rebuilds it from the values it is given)."""
    from kerasweep.search.engines._optuna_space import live_suggestions, suggest
    from kerasweep.search.trial import builder_style

    if builder_style(space) == "values":
        suggest(trial, space)
        return
    from kerasweep.trainers.models import build_by_running

    build_by_running(space.model, live_suggestions(trial, space))


def make_search(space: Space, max_concurrent: int, failures_in_a_row: int = 5,
                first_points: tuple[dict[str, Any], ...] = (), evidence: tuple[Any, ...] = ()) -> Any:
    """OptunaSearch with the space's sampler, `first_points` (--warm-start, --enqueue) and the declared
    defaults as the first trials, at most `max_concurrent` trials at once, until the budget of
    complete + pruned trials is met. `evidence` (--warm-start) is what the sampler learns from besides
    this sweep's trials (OptunaSearch's own `evaluated_rewards` does not take a define-by-run space)."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from kerasweep.search.engines._optuna_space import make_sampler

    defaults = space.default_values() if space.search.sampler != "grid" else {}  # the grid holds every config
    points = [point for point in (*first_points, defaults) if point]
    objectives = space.all_objectives  # several: a list of metrics and modes (Optuna's multi-objective study)
    search = OptunaSearch(
        space=functools.partial(define_by_run, space=space),
        sampler=make_sampler(space, workers=max_concurrent, evidence=evidence),
        points_to_evaluate=points or None,
        metric=[o.metric for o in objectives] if len(objectives) > 1 else objectives[0].metric,
        mode=[_mode(o.direction) for o in objectives] if len(objectives) > 1 else _mode(objectives[0].direction),
    )
    return _budget_searcher_class()(ConcurrencyLimiter(search, max_concurrent=max_concurrent), space.budget.trials,
                                    failures_in_a_row)


def _budget_searcher_class() -> type:
    from ray.tune.search import Searcher

    class BudgetSearcher(Searcher):
        """Suggests trials until `budget` of them ended without an error (complete or stopped early).

        Tune's `num_samples` counts every trial, so a trial that fails would use up the budget; this
        wrapper runs with `num_samples=-1` and says FINISHED itself, as the Optuna engine counts. While
        the trials still running could meet the budget it suggests nothing and waits for them.
        """

        def __init__(self, searcher: Any, budget: int, failures_in_a_row: int = 5) -> None:
            self.searcher, self.budget, self.failures_in_a_row = searcher, budget, failures_in_a_row
            self.counted: set[str] = set()
            self.live: set[str] = set()
            self.streak = FailureStreak(failures_in_a_row)  # at the limit, no new trial starts
            super().__init__(metric=searcher.metric, mode=searcher.mode)

        def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
            return self.searcher.set_search_properties(metric, mode, config, **spec)

        def set_max_concurrency(self, max_concurrent: int) -> bool:
            return self.searcher.set_max_concurrency(max_concurrent)

        def suggest(self, trial_id: str) -> dict | str | None:
            started = self.counted or self.live  # a first trial runs whatever the clock says
            if len(self.counted) >= self.budget or self.streak.message or (started and _time_is_up()):
                return Searcher.FINISHED
            if len(self.counted) + len(self.live) >= self.budget:
                return None  # a running trial may still fail and need replacing
            suggestion = self.searcher.suggest(trial_id)
            if suggestion not in (None, Searcher.FINISHED):
                self.live.add(trial_id)
            return suggestion

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            self.searcher.on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            self.live.discard(trial_id)
            self.streak.add("failed" if error else None)
            if not error:
                self.counted.add(trial_id)
            self.searcher.on_trial_complete(trial_id, result=result, error=error)

        # Tune keeps a wrapper's state through these (as ConcurrencyLimiter's) with the experiment,
        # and the wrapped searcher's through save and restore
        def get_state(self) -> dict:
            return {"counted": sorted(self.counted), "live": sorted(self.live)}

        def set_state(self, state: dict) -> None:
            self.counted, self.live = set(state["counted"]), set(state["live"])
            self.streak = FailureStreak(self.failures_in_a_row)  # a re-run after a fix starts a new streak

        def save(self, checkpoint_path: str) -> None:
            self.searcher.save(checkpoint_path)

        def restore(self, checkpoint_path: str) -> None:
            self.searcher.restore(checkpoint_path)

    return BudgetSearcher


_deadline: float | None = None  # this command's budget.minutes, as wall-clock time (see run)


def _time_is_up() -> bool:
    """The searcher lives in the driver; a restored one is unpickled from the experiment, so the deadline
    of this run of the command is read here, not kept on the searcher."""
    return _deadline is not None and time.time() >= _deadline


def make_scheduler(space: Space) -> Any:
    """Early stopping by the space's pruner name, in Ray's terms (epochs are the time attribute).

    successive_halving (the default here) -> ASHA, asynchronous successive halving: no waiting for a
    whole rung; hyperband -> asynchronous Hyperband (ASHA over three brackets of different
    aggressiveness); median -> median stopping rule; none -> FIFO. Ray's synchronous HyperBandScheduler
    is not used: it pauses trials at every rung (Ray's docs recommend ASHA over it).
    """
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    epochs, name = space.budget.epochs, space.search.pruner or DEFAULT_PRUNER
    if space.multi_objective:  # a trial stopped early has no value for its model's cost: none stop early
        return FIFOScheduler()
    target = {"metric": space.objective.metric, "mode": _mode(space.objective.direction), "time_attr": EPOCH}
    # max_t is one past the last epoch: ASHA stops a trial *at* max_t, which would cut off the final
    # report (best value + checkpoint) that marks a trial complete.
    if name == "hyperband":
        return ASHAScheduler(max_t=epochs + 1, grace_period=1, reduction_factor=3, brackets=3, **target)
    if name == "successive_halving":
        return ASHAScheduler(max_t=epochs + 1, grace_period=1, reduction_factor=3, brackets=1, **target)
    if name == "median":
        return MedianStoppingRule(grace_period=1, min_samples_required=2, **target)
    return FIFOScheduler()


def _mode(direction: str) -> str:
    return "max" if direction == "maximize" else "min"


# --- the trial side (runs in a reused worker actor) ----------------------------------------------
def trainable(config: dict[str, Any], sweep: SweepConfig) -> None:
    """One trial in a Ray worker: train, report each epoch, report the best checkpoint at the end."""
    import ray
    from ray import tune

    from kerasweep.search.quiet import import_keras_quietly, silence
    from kerasweep.search.trial import TrialFiles, resolve_values, run_trial
    from kerasweep.trainers.fit import BackupPolicy, ResumePoint, configure_runtime, latest_backup

    silence(sweep.verbose)
    import_keras_quietly()
    configure_runtime(threads=max(1, int(sweep.options.cpus_per_trial)))
    values = resolve_values(sweep.space, config)

    node = ray.get_runtime_context().get_node_id()

    trial_id = tune.get_context().get_trial_id()
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as backups:
        resume = None
        restored = tune.get_checkpoint()  # a retried or restored trial: its last resumable copy
        if restored is not None:
            with restored.as_directory() as directory:
                found = latest_backup(directory)
                if found is not None and found.epoch < sweep.space.budget.epochs:
                    resume = ResumePoint(Path(folder) / "resume.keras", found.epoch)
                    shutil.copy(found.path, resume.path)

        handed = [resume.epoch if resume else 0]  # the epoch of the last copy handed to Tune

        def report(epoch: int, metrics: dict[str, float]) -> bool:
            saved = latest_backup(backups)  # taken after the previous epoch's hooks (see trainers.fit.train)
            # what it trains on, with each epoch: a trial the scheduler stops never sends a final report
            sent = {**metrics, EPOCH: epoch, NODE: node, **{RUNTIME + k: v for k, v in current_runtime().items()}}
            if saved is not None and saved.epoch > handed[0]:  # a fresh copy (see --checkpoint-every): hand it to Tune
                handed[0] = saved.epoch
                tune.report(sent, checkpoint=tune.Checkpoint.from_directory(backups))
            else:
                tune.report(sent)
            return False  # the scheduler stops the trial from the driver

        files = TrialFiles(checkpoint=Path(folder) / "model.keras",
                           tensorboard=sweep.store.tensorboard(sweep.name, f"ray-{trial_id}").resolve(),
                           backup=BackupPolicy(Path(backups), sweep.checkpoint_every_s))
        outcome = run_trial(sweep.space, values, hooks=[report], files=files, resume=resume, debug=sweep.debug)
        if resume is not None:
            resume.path.unlink(missing_ok=True)  # not part of the final checkpoint
        if outcome.state is TrialState.FAILED:
            raise TrialFailed(outcome.error or "trial failed")
        final = {sweep.space.objective.metric: outcome.value, EPOCH: outcome.epochs, FINAL: True, NODE: node,
                 "best_epoch": (outcome.best_epoch or 0) + 1, **outcome.measures,
                 **{o.metric: v for o, v in zip(sweep.space.all_objectives, outcome.values or ())},
                 **{f"{REPEAT}{k}": v for k, v in enumerate(outcome.repeat_values, start=1)},
                 **{RUNTIME + tag: value for tag, value in outcome.runtime.items()}}
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(folder))


# --- the driver side: MLflow ----------------------------------------------------------------------
def _tune_callback_class() -> type:
    from ray.tune import Callback

    class TrackingCallback(Callback):
        """Writes every trial to MLflow from the driver: one nested run per Ray trial id."""

        def __init__(self, sweep: SweepConfig, on_progress: ProgressCallback | None = None) -> None:
            self.sweep = sweep
            self.on_progress = on_progress
            self._life: TrialLife | None = None
            self._progress: Progress | None = None
            self._runs: dict[str, tuple[int, str]] = {}  # ray trial id -> (number, run id)
            self._closed: set[str] = set()  # ray trial ids whose run ended (a restored trial gets a new run)
            self._final: dict[str, dict[str, Any]] = {}
            self._next = 0  # the next trial number
            self._reserved: dict[str, int] = {}  # ray trial id -> its number, taken in the order Tune added it

        def __getstate__(self) -> dict[str, Any]:  # pickled into Ray's experiment state: no clients
            return {"sweep": self.sweep, "on_progress": None, "_life": None, "_progress": None, "_runs": {},
                    "_closed": set(), "_final": {}, "_next": 0, "_reserved": {}}

        @property
        def life(self) -> TrialLife:
            if self._life is None:
                self._life = TrialLife(self.sweep)
                self._life.fail_orphans()  # runs left RUNNING: their driver died (one driver per sweep)
                for run in self._life.tracker.trial_runs(self.sweep.parent_run_id):
                    ray_id = run.data.tags.get(RAY_ID_TAG)
                    if ray_id:
                        number = int(run.data.tags[TRIAL_TAG])
                        self._next = max(self._next, number + 1)
                        self._closed.add(ray_id)
                        if ray_id not in self._runs or number > self._runs[ray_id][0]:
                            self._runs[ray_id] = (number, run.info.run_id)
            return self._life

        def _run(self, trial: Any, starting: bool = False) -> tuple[int, str]:
            life = self.life
            if trial.trial_id not in self._runs or (starting and trial.trial_id in self._closed):
                self._closed.discard(trial.trial_id)
                number = self._reserved.pop(trial.trial_id, None)
                if number is None:  # a retried or restored trial: the next number
                    number, self._next = self._next, self._next + 1
                previous = self._runs.get(trial.trial_id)  # a retried or restored trial: a new run, continuing it
                found = _resumable(trial) if previous is not None else None
                run_id = life.open(TrialStart(
                    number, {**self.sweep.space.fixed, **trial.config}, tags={RAY_ID_TAG: trial.trial_id},
                    retry_of=previous[0] if previous else None, resume=found,
                    source_run=previous[1] if previous else None))
                self._runs[trial.trial_id] = (number, run_id)
            return self._runs[trial.trial_id]

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self._reserve(trials)
            self._run(trial, starting=True)

        def _reserve(self, trials: list) -> None:
            """Number new trials in the order Tune added them (the searcher's order: --warm-start's point is
            trial 0), not the order their actors happen to start in when several start at once."""
            self.life  # noqa: B018 - reads what is logged first: numbers continue after it
            for added in trials:
                if added.trial_id not in self._runs and added.trial_id not in self._reserved \
                        and added.status in ("PENDING", "RUNNING"):
                    self._reserved[added.trial_id], self._next = self._next, self._next + 1

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            _, run_id = self._run(trial)
            if result.get(FINAL):
                self._final[trial.trial_id] = result
                return
            from kerasweep.trainers.catalog import ALL_METRICS

            if int(result[EPOCH]) == 1 and NODE in result:  # which Ray node ran it (cluster runs)
                self.life.tracker.tag(run_id, NODE_TAG, str(result[NODE]))
            if int(result[EPOCH]) == 1:  # what it trains on, recorded even if the scheduler stops it
                for key, value in result.items():
                    if isinstance(key, str) and key.startswith(RUNTIME):
                        self.life.tracker.tag(run_id, key[len(RUNTIME):], str(value))
            self.life.epoch_logger(run_id)(int(result[EPOCH]), {k: result[k] for k in ALL_METRICS if k in result})

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            _, run_id = self._run(trial)
            final = self._final.pop(trial.trial_id, None)
            metric = self.sweep.space.objective.metric
            if final is not None:
                checkpoint = trial.checkpoint
                path = Path(checkpoint.path) / "model.keras" if checkpoint is not None else None
                from kerasweep.trainers.catalog import is_measure

                objectives = self.sweep.space.all_objectives if self.sweep.space.multi_objective else ()
                outcome = TrialOutcome(TrialState.COMPLETE, final[metric], checkpoint=path,
                                       measures={k: v for k, v in final.items() if is_measure(k)},
                                       values=tuple(final[o.metric] for o in objectives) or None,
                                       repeat_values=tuple(final[f"{REPEAT}{k}"] for k in
                                                           range(1, self.sweep.space.budget.repeats + 1)
                                                           if f"{REPEAT}{k}" in final),
                                       runtime={k[len(RUNTIME):]: str(v) for k, v in final.items()
                                                if k.startswith(RUNTIME)})
            else:  # stopped by the scheduler: its value is its last reported one, as Optuna records a pruned trial
                outcome = TrialOutcome(TrialState.PRUNED, _last_value(trial, metric))
            self.life.close(run_id, outcome)
            self._closed.add(trial.trial_id)
            self.progress()

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            """--max-failures: this attempt failed and Tune retries the trial (a new run then)."""
            self.on_trial_error(iteration, trials, trial, **info)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            _, run_id = self._run(trial)
            error, details = _error_of(trial)
            self.life.close(run_id, TrialOutcome(TrialState.FAILED, error=error, details=details))
            self._closed.add(trial.trial_id)
            self.progress()

        def progress(self) -> None:
            if self.on_progress is None:
                return
            if self._progress is None:
                self._progress = Progress(self.on_progress, lambda: results(self.sweep))
            self._progress()

    return TrackingCallback


def _resumable(trial: Any) -> ResumePoint | None:
    """The resumable copy in a Tune trial's latest checkpoint and its epoch, if it has one."""
    from kerasweep.trainers.fit import latest_backup

    checkpoint = getattr(trial, "checkpoint", None)
    return latest_backup(checkpoint.path) if checkpoint is not None and os.path.isdir(checkpoint.path) else None


def _last_value(trial: Any, metric: str) -> float | None:
    """A stopped trial's value, as Optuna records a pruned one: its last reported objective."""
    value = (trial.last_result or {}).get(metric)
    return float(value) if value is not None else None


def _error_of(trial: Any) -> tuple[str, str | None]:
    """The one-line reason and the traceback of an errored Ray trial."""
    error_file = getattr(trial, "error_file", None)
    details = Path(error_file).read_text() if error_file and os.path.exists(error_file) else None
    text = details or str(getattr(trial, "error_msg", "") or "trial failed")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "trial failed"
    reason = last.split("TrialFailed: ", 1)[-1] if "TrialFailed: " in last else last
    return reason[:1000], details


# --- running ------------------------------------------------------------------------------------
def _init_ray(sweep: SweepConfig) -> bool:
    """Connect to the cluster (or start a private local Ray); True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    address = sweep.options.address or os.environ.get("RAY_ADDRESS")
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": sweep.verbose,
                               "configure_logging": True}
    env = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
                        "PYTHONWARNINGS": "ignore", "MLFLOW_LOGGING_LEVEL": "ERROR"}}
    if address:
        ray.init(address=address, runtime_env=env, **options)
    else:  # address="local": always a fresh Ray for this sweep, never a cluster someone else started here
        with ray_loopback_only() as loopback:
            ray.init(address="local", include_dashboard=False, num_cpus=os.cpu_count(), **loopback, **options)
    stop_on_sigterm()  # ray.init replaced our SIGTERM handler with a bare exit: the trial would stay RUNNING
    if not sweep.verbose:  # a failed trial's traceback goes to MLflow (error.txt), not over the progress line
        logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
    return True


def _concurrency(sweep: SweepConfig) -> int:
    import ray

    resources, cpus, gpus = ray.cluster_resources(), sweep.options.cpus_per_trial, sweep.options.gpus_per_trial
    by_cpu = int(resources.get("CPU", 1) // max(cpus, 0.01)) if cpus else 64
    by_gpu = int(resources.get("GPU", 0) // gpus) if gpus else by_cpu
    if gpus and by_gpu == 0:
        raise UserInputError(f"--gpus-per-trial: {gpus} GPUs per trial, but the Ray cluster has "
                             f"{resources.get('GPU', 0)} GPUs; lower it or join a GPU cluster with --address")
    return max(1, min(by_cpu, by_gpu, sweep.space.budget.trials))


def experiment_path(sweep: SweepConfig) -> Path:
    """Where Ray keeps the experiment state and checkpoints (a shared path on a cluster)."""
    return sweep.store.ray_experiment(sweep.name)


def run(sweep: SweepConfig, on_progress: ProgressCallback) -> None:
    """Start or restore the Tune experiment and run it to its number of samples."""
    global _deadline
    path = experiment_path(sweep)  # checked by check_stores before the sweep started
    _deadline = sweep.deadline
    started = _init_ray(sweep)
    try:
        _fit(sweep, on_progress, path)
    finally:
        if started:  # leave no Ray behind for notebook users or the next sweep
            import ray

            ray.shutdown()


def _fit(sweep: SweepConfig, on_progress: ProgressCallback, path: Path) -> None:
    from ray import tune

    space = sweep.space
    resources = {"cpu": sweep.options.cpus_per_trial, "gpu": sweep.options.gpus_per_trial}
    fn = tune.with_resources(tune.with_parameters(trainable, sweep=sweep), resources)
    callback = _tune_callback_class()(sweep, on_progress)
    if path.exists():
        tuner = tune.Tuner.restore(str(path), trainable=fn, resume_errored=sweep.max_failures > 0)
        reattach_callback(tuner, callback)
    else:
        tuner = tune.Tuner(
            fn,
            tune_config=tune.TuneConfig(
                search_alg=make_search(space, _concurrency(sweep), sweep.max_failures_in_a_row, sweep.first_points,
                                       sweep.evidence),
                scheduler=make_scheduler(space),
                num_samples=-1,  # the search algorithm stops at the budget (failed trials do not count)
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=sweep.name,
                storage_path=str(path.parent),
                callbacks=[callback],
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=sweep.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
    try:  # a model's cost is known once it trained: only the final report holds every objective
        with _environment(TUNE_DISABLE_STRICT_METRIC_CHECKING="1" if space.multi_objective else None):
            tuner.fit()
    except KeyboardInterrupt:
        _close_interrupted(sweep)
        raise
    if _close_interrupted(sweep):  # Tune caught Ctrl-C and saved its state: tell the CLI
        raise KeyboardInterrupt
    found = results(sweep)  # the searcher stopped short of the budget after failures in a row: say why
    message = FailureStreak.of(found, sweep.max_failures_in_a_row).message
    if message and found.done < sweep.space.budget.trials:
        raise SweepAborted(message)


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    """Set the named variables (None: leave as is) for the block only."""
    saved = {name: os.environ.get(name) for name, value in values.items() if value is not None}
    os.environ.update({name: value for name, value in values.items() if value is not None})
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.update({name: value})


def _close_interrupted(sweep: SweepConfig) -> bool:
    """Fail the runs of trials a Ctrl-C stopped (Tune resumes them on the next run); True if any."""
    unfinished = [t for t in results(sweep).trials if t.state is TrialState.RUNNING]
    life = TrialLife(sweep)
    for trial in unfinished:
        life.abandon(trial.mlflow_run_id, stop_reason())
    return bool(unfinished)


def check_stores(sweep: SweepConfig, logged: set[int], parent_exists: bool) -> str | None:
    """Whether the Ray experiment state and MLflow (`logged`: trial numbers with a run) tell the same story."""
    path = experiment_path(sweep)
    if path.exists():
        from ray import tune

        if not tune.Tuner.can_restore(str(path)):
            return (f"{path}: the Ray experiment state is missing or truncated, so the sweep cannot resume; remove "
                    "that folder to start over, or pass a new --name")
    return folder_agrees_with_mlflow(path, "Ray experiment state", logged, parent_exists)


def results(sweep: SweepConfig) -> SweepResult:
    """The sweep's trials as the driver recorded them in MLflow."""
    return results_from_mlflow(sweep)
