"""Optuna engine: ask/tell over an RDB (SQLite by default) or journal storage, N worker processes.

The only place that translates a `Space` into Optuna's terms (`_suggest`, `make_sampler`,
`make_pruner`). Each epoch is reported to the trial; the pruner's decision stops that trial's
training. The budget counts complete + pruned trials, so failed or crashed trials never eat it.
Crash safety: each running trial records its owner and a heartbeat; see `optuna_recovery` and `owners`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import multiprocessing
import os
import random
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import optuna
from optuna.trial import TrialState as OptunaState

from kerasweep.search.engines._optuna_space import (chosen_features, live_suggestions, make_sampler, sampler_problems,
                                                   suggest)
from kerasweep.search.errors import KerasweepError, SweepAborted, TrackingUnreachable, UserInputError
from kerasweep.search.interrupts import deferred_interrupts, interruptible, raise_if_interrupted, stop_reason
from kerasweep.search.engines.optuna_recovery import (
    CRASHES_ATTR,
    DISCARDED_ATTR,
    GRACE_S,
    HEARTBEAT_S,
    RETRIES_ATTR,
    RETRY_OF_ATTR,
    RUN_ATTR,
    STATES,
    abandon,
    last_value,
    fail_dead_owners,
    fail_orphans,
    recover_dead_worker,
    resume_point,
    resume_unfinished,
    stale_trial_failed,
)
from kerasweep.search.engines.owners import checkable, this_process
from kerasweep.search.lifecycle import FailureStreak, Progress, TrialLife, TrialStart, directions_of, out_of_time
from kerasweep.search.results import SweepResult, TrialResult, TrialState
from kerasweep.search.space import Space
from kerasweep.search.outages import is_outage, outage
from kerasweep.search.store import sqlite_url
from kerasweep.search.trial import builder_style, resolve_values, run_trial
from kerasweep.trainers.backend import visible_gpus, worker_environment

if TYPE_CHECKING:
    from kerasweep.search.config import SweepConfig
    from kerasweep.search.engines import ProgressCallback

SAMPLERS = ("tpe", "random", "cmaes", "qmc", "nsga2", "grid")  # Optuna's samplers; the first is the default
DEFAULT_PRUNER = "hyperband"
MULTI_OBJECTIVE = True  # several objectives: Optuna's multi-objective study (TPE, NSGA-II, random, QMC)
WAIT_S = 2.0  # how often a worker whose budget is running elsewhere looks again
SEEDS_ATTR = "kerasweep.sampler_seeds"  # the sampler seed of each command that ran the sweep, in order
RSS_ATTR = "kerasweep.worker_peak_rss_mb"  # the trial's process's peak memory when the trial ended
RECYCLE_EXIT = 75  # a worker that ran its share of trials exits with this, and a fresh one takes its place


def trials_per_process() -> int:
    """Trials one process trains before a fresh one goes on: each trial leaves about 6 MB that no
    `clear_session` frees (TensorFlow's traced graphs), 1.8 GB over 300 trials in one process.
    `KERASWEEP_TRIALS_PER_PROCESS` sets it (at least 1)."""
    return max(1, int(os.environ.get("KERASWEEP_TRIALS_PER_PROCESS", "50")))


@dataclass(frozen=True)
class Options:
    """The optuna engine's own options (`--workers`, `--trials-per-gpu`, `--storage`)."""

    workers: int | None = None  # trial processes on this machine, pinned to GPUs round robin; None: see placement
    trials_per_gpu: int | None = None  # workers sharing each visible GPU, each with its share of the memory
    storage: str | None = None  # an Optuna storage URL shared by workers on several machines; None: the store's file


# packing small trials on a GPU: 4 per GPU gave 2 to 2.3 times the trials per hour of 1 on an H200
# (../shared/gpu-probe.md), 8 at most 3.2 times with 8 processes' memory; 4 is the default where GPUs are seen
DEFAULT_TRIALS_PER_GPU = 4


@dataclass(frozen=True)
class Placement:
    """How many worker processes run, and how they share the GPUs this machine shows."""

    workers: int
    per_gpu: int  # workers per GPU (0: no GPU)
    gpus: tuple[str, ...]


def placement(options: Options) -> Placement:
    """`--workers` as given (pinned to GPUs round robin), else `--trials-per-gpu` (default 4) workers per visible
    GPU, else one worker on the CPU."""
    gpus = tuple(visible_gpus())
    if not gpus:
        return Placement(options.workers or 1, 0, ())
    if options.workers is not None:
        return Placement(options.workers, max(1, -(-options.workers // len(gpus))), gpus)
    per_gpu = options.trials_per_gpu or DEFAULT_TRIALS_PER_GPU
    return Placement(per_gpu * len(gpus), per_gpu, gpus)


def describe(options: Options) -> str:
    placed = placement(options)
    if not placed.gpus:
        return f"{placed.workers} worker(s)" + (" (no GPU seen: --trials-per-gpu unused)" if options.trials_per_gpu
                                                else "")
    default = "" if options.workers or options.trials_per_gpu else " (default)"
    return f"{placed.workers} worker(s), {placed.per_gpu} per GPU{default} on {len(placed.gpus)} GPU(s)"


def check(space: Space, options: Options) -> list[str]:
    problems = []
    if options.workers is not None and options.workers < 1:
        problems.append(f"--workers: must be >= 1, got {options.workers}")
    if options.trials_per_gpu is not None and options.trials_per_gpu < 1:
        problems.append(f"--trials-per-gpu: must be >= 1, got {options.trials_per_gpu}")
    if options.workers is not None and options.trials_per_gpu is not None:
        problems.append("--workers, --trials-per-gpu: give one of them (--trials-per-gpu K runs K workers per GPU)")
    return problems + sampler_problems(space)


# --- translating the space ---------------------------------------------------------------------
def make_pruner(space: Space) -> optuna.pruners.BasePruner:
    """The space's pruner with epochs (1..budget.epochs) as the resource; none with several objectives
    (Optuna prunes by one value, and a trial stopped early would have no value for a model's cost)."""
    name, epochs = space.search.pruner or DEFAULT_PRUNER, space.budget.epochs
    if space.multi_objective:
        return optuna.pruners.NopPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=hyperband_min_epochs(epochs), max_resource=epochs,
                                              reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def hyperband_min_epochs(epochs: int) -> int:
    """Hyperband's first rung: a sixteenth of the epochs, at least 1 (so 1 below 32 epochs). Measured on
    LCBench's real learning curves (docs/benchmarks.md, table 6): at 52 epochs a first rung at epoch 3
    instead of 1 found better models for the same epochs, on the 20 development tasks and on the 15 held
    out; one epoch's accuracy ranks configs too poorly to stop two thirds of them on it."""
    return max(1, epochs // 16)


# --- storage ----------------------------------------------------------------------------------
def storage_url(sweep: SweepConfig) -> str:
    """`--storage` when given, else the store's SQLite file (optuna-dashboard reads it too)."""
    return sweep.options.storage or sqlite_url(sweep.store.optuna_db)


def make_storage(sweep: SweepConfig) -> optuna.storages.BaseStorage:
    """RDB storage with heartbeats (SQLite, PostgreSQL, MySQL), or a journal file for `*.journal`."""
    url = storage_url(sweep)
    if url.endswith((".journal", ".log")) and "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(url))
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        with chosen_features(), _schema_lock(url):
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                heartbeat_stale_trial_callback=functools.partial(stale_trial_failed, sweep),
            )
    except Exception as exc:  # noqa: BLE001 - bad URLs surface as many different driver errors
        flag = "--storage" if sweep.options.storage else f"{sweep.store.optuna_db} (the store's Optuna file)"
        raise UserInputError(f"{flag}: cannot open {url!r}: {str(exc).splitlines()[0]}") from None


@contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """One process at a time opens (and so creates the schema of) a SQLite file: two commands starting on a
    new store at once raced in Optuna's table creation, one in five failing. PostgreSQL and MySQL take
    their own locks; a journal file appends."""
    if not url.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(url.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(f"{db.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _study(sweep: SweepConfig, storage: optuna.storages.BaseStorage, worker: int = 0) -> optuna.Study:
    space = sweep.space
    with chosen_features():
        return optuna.create_study(
            study_name=sweep.name,
            storage=storage,
            directions=[o.direction for o in space.all_objectives],
            sampler=make_sampler(space, worker, sweep.options.workers, sweep.evidence),
            pruner=make_pruner(space),
            load_if_exists=True,
        )


def results(sweep: SweepConfig, storage: optuna.storages.BaseStorage | None = None) -> SweepResult:
    """Every trial of the sweep's study (discarded over-budget asks left out); `storage`: one already open
    (a worker's: opening an RDB storage checks its schema, about 0.1 s)."""
    storage = storage or make_storage(sweep)
    try:
        study = optuna.load_study(study_name=sweep.name, storage=storage)
        trials = study.get_trials(deepcopy=False)
    except KeyError:
        trials = []
    found = tuple(
        TrialResult(
            number=t.number,
            state=STATES.get(t.state, TrialState.FAILED),
            value=t.values[0] if t.values else last_value(t),
            values=tuple(t.values) if t.values and len(t.values) > 1 else None,
            params={**sweep.space.fixed, **t.params},
            mlflow_run_id=t.user_attrs.get(RUN_ATTR),
            epochs=max(t.intermediate_values, default=0),
            error=t.user_attrs.get("kerasweep.error"),
            intermediate=dict(t.intermediate_values),
        )
        for t in trials
        if not _discarded(t) and t.state is not OptunaState.WAITING
    )
    return SweepResult(sweep.name, "optuna", sweep.space.objective.direction, sweep.space.budget.trials, found,
                       directions_of(sweep.space))


def check_stores(sweep: SweepConfig, logged: set[int], parent_exists: bool) -> str | None:
    """Whether the Optuna study and MLflow (`logged`: trial numbers with a run) tell the same story."""
    url = storage_url(sweep)
    trials: list[optuna.trial.FrozenTrial] = []
    if sweep.options.storage or sweep.store.optuna_db.exists():  # opening creates it: not for a check
        try:
            trials = optuna.load_study(study_name=sweep.name, storage=make_storage(sweep)).get_trials(deepcopy=False)
        except KeyError:
            pass
    known = {t.number for t in trials}
    unknown = sorted(logged - known)
    if unknown:
        return (f"MLflow holds runs of trials {_numbers(unknown)} that the Optuna storage {url} does not know "
                f"({len(known)} trials there): that storage was reset or replaced. Restore it from a backup, or "
                "pass a new --name to start a new sweep")
    # `logged` was read before these trials: a command running this sweep meanwhile may have opened a run
    # since (and recorded it here). Such a run exists; a run lost with a reset store does not
    missing = [t for t in trials if RUN_ATTR in t.user_attrs and t.number not in logged]
    tracker = TrialLife(sweep).tracker  # the process's own (cached): opened already for `logged`
    lost = sorted(t.number for t in missing if not tracker.has_run(t.user_attrs[RUN_ATTR]))
    if lost:
        where = "its parent run is missing" if not parent_exists else f"the runs of trials {_numbers(lost)} are missing"
        return (f"the Optuna storage {url} holds {len(trials)} trials but in the MLflow store {where}: that "
                "store was reset, replaced or is another one (MLFLOW_TRACKING_URI). Restore it, or pass a new "
                "--name to start a new sweep")
    return None


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:5]))
    return shown + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")


def _discarded(trial: optuna.trial.FrozenTrial) -> bool:
    """An over-budget ask another worker won (a user attribute; stores before 2026-12 kept a system one)."""
    return bool(trial.user_attrs.get(DISCARDED_ATTR) or trial.system_attrs.get(DISCARDED_ATTR))


# --- running ------------------------------------------------------------------------------------
def run(sweep: SweepConfig, on_progress: ProgressCallback) -> None:
    """Fail what a dead process left running, then run the workers until the budget is met."""
    placed = placement(sweep.options)  # settled once, here: a worker sees only its own GPU
    sweep = _settled(sweep, placed)
    with deferred_interrupts():  # store work is never cut short by Ctrl-C (see search.interrupts)
        storage = make_storage(sweep)
        study = _study(sweep, storage)
        sweep = _reseeded(sweep, study)
        if not study.get_trials(deepcopy=False):
            # --warm-start / --enqueue first, then a known-good trial: the space's declared defaults
            defaults = sweep.space.default_values() if sweep.space.search.sampler != "grid" else {}  # the grid has all
            for point in (*sweep.first_points, defaults):
                if point:
                    study.enqueue_trial(point, skip_if_exists=True)
        fail_orphans(sweep, study)
        resume_unfinished(sweep, study)
    if sweep.options.workers == 1 and sweep.space.budget.trials <= trials_per_process():
        work(sweep, 0, on_progress)
        return
    _run_workers(sweep, study, storage, on_progress, placed)


def _reseeded(sweep: SweepConfig, study: optuna.Study) -> SweepConfig:
    """A new sweep draws from the space's seed (reproducible); each later command from a new seed, recorded
    in the study: with one fixed seed every resume replayed the same configs, a process-killing one
    included (7 resumes, 7 kills)."""
    seeds, fresh = list(study.user_attrs.get(SEEDS_ATTR, [])), not study.get_trials(deepcopy=False)
    seed = sweep.space.search.seed if fresh else random.SystemRandom().randrange(2**31)
    study.set_user_attr(SEEDS_ATTR, [*seeds, seed])
    if sweep.parent_run_id:  # beside the space file the parent run holds, which names only the first seed
        TrialLife(sweep).tracker.tag(sweep.parent_run_id, SEEDS_ATTR, ",".join(map(str, [*seeds, seed])))
    if seeds or not fresh:
        print(f"Resuming with sampler seed {seed} (the space's seed {sweep.space.search.seed} draws a sweep's "
              "first configs; each resume draws anew, or it would repeat them).", file=sys.stderr)
    return dataclasses.replace(sweep, space=sweep.space.with_overrides(seed=seed))


def _settled(sweep: SweepConfig, placed: Placement) -> SweepConfig:
    """The sweep with its worker count and packing fixed, as every worker process gets it."""
    return dataclasses.replace(sweep, options=dataclasses.replace(sweep.options, workers=placed.workers,
                                                                  trials_per_gpu=placed.per_gpu or None))


def _run_workers(sweep: SweepConfig, study: optuna.Study, storage: optuna.storages.BaseStorage,
                 on_progress: ProgressCallback, placed: Placement) -> None:
    """`--workers N` processes on one storage. A worker killed by a signal (the kernel's out-of-memory
    killer, kill -9) has its trial failed in both stores at once (continued from its backup, if any)
    and is replaced, a few times at most, so the others never wait out the heartbeat's grace."""
    context = multiprocessing.get_context("spawn")
    processes: dict[int, Any] = {}  # slot -> its current worker process
    started = 0

    def start(slot: int) -> None:
        nonlocal started
        # each worker sees one GPU (round robin) and its share of that GPU's memory, from its environment
        env = worker_environment(list(placed.gpus), slot, placed.per_gpu)
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:  # a new index each start: a replacement must not replay its predecessor's sampler seed
            processes[slot] = context.Process(target=_worker_main, args=(sweep, started), daemon=False)
            processes[slot].start()
        finally:
            for name, value in saved.items():
                os.environ.pop(name) if value is None else os.environ.update({name: value})
        started += 1

    for slot in range(sweep.options.workers):
        start(slot)
    replacements, recovered, last_check = sweep.options.workers, set(), time.monotonic()
    try:
        while True:
            alive = any(p.is_alive() for p in processes.values())  # before the exits are read: none is missed
            with deferred_interrupts():
                for slot, process in list(processes.items()):
                    if process.exitcode == RECYCLE_EXIT:  # ran its share of trials: a fresh process goes on
                        start(slot)
                        alive = True
                    elif process.exitcode is not None and process.exitcode < 0 and process.pid not in recovered:
                        recover_dead_worker(sweep, study, process.pid)  # killed by a signal
                        recovered.add(process.pid)
                        if replacements:
                            replacements -= 1
                            start(slot)
                if time.monotonic() - last_check > HEARTBEAT_S:  # another command's process died here
                    fail_dead_owners(sweep, study)
                    last_check = time.monotonic()
                on_progress(results(sweep, storage))  # the open storage: no schema check a second
            if not alive:
                break
            time.sleep(1.0)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: each worker ends its trial as failed, then stops
        for process in processes.values():
            process.terminate()  # SIGTERM, which a worker handles as Ctrl-C
        for process in processes.values():
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
        fail_orphans(sweep, study)
        raise
    codes = [p.exitcode for p in processes.values()]
    if all(code != 0 for code in codes):
        raise SweepAborted(f"all {len(codes)} workers stopped with errors (exit codes {codes}); rerun with --verbose to see why")
    done = results(sweep, storage).done
    if recovered and done < sweep.space.budget.trials and not out_of_time(sweep):
        raise SweepAborted(f"worker processes were killed {len(recovered)} times (out of memory? see `dmesg`) and the "
                           f"sweep stopped at {done} of {sweep.space.budget.trials} trials; re-run the same command "
                           "to continue, with fewer --workers if memory ran out")


def _worker_main(sweep: SweepConfig, worker: int) -> None:
    from kerasweep.search.interrupts import stop_on_sigterm
    from kerasweep.search.quiet import import_keras_quietly, silence

    stop_on_sigterm()  # the parent stops its workers with SIGTERM: each fails its trial as on Ctrl-C
    silence(sweep.verbose)
    import_keras_quietly()
    try:
        if work(sweep, worker, lambda result: None, watch_owners=False, max_trials=trials_per_process()):
            raise SystemExit(RECYCLE_EXIT)
    except KeyboardInterrupt:  # the parent reports the interruption once
        raise SystemExit(130) from None
    except KerasweepError as exc:
        print(f"error: worker {worker}: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


@deferred_interrupts()  # Ctrl-C gets through while a trial trains (`_run_one`), not while the stores are used
def work(sweep: SweepConfig, worker: int, on_progress: ProgressCallback, watch_owners: bool = True,
         max_trials: int | None = None) -> bool:
    """One worker's loop: ask, train with pruning and logging, tell; until the budget is met.

    Trials running elsewhere that could meet the budget are waited for, not counted as done: a command
    killed meanwhile leaves them RUNNING until this one finds them dead (its pid, here, or Optuna's
    heartbeat) and asks again. `watch_owners`: fail trials whose owner is dead here (the command's own
    process does; its worker processes leave it to the command). `max_trials`: return True after that
    many trials, for a fresh process to go on (see `trials_per_process`)."""
    from kerasweep.search.quiet import import_keras_quietly
    from kerasweep.trainers.fit import configure_runtime

    if sweep.options.workers is None:  # called on its own (a benchmark), not through run()
        sweep = _settled(sweep, placement(sweep.options))
    import_keras_quietly()
    configure_runtime(parallel_trials=sweep.options.workers)
    storage = make_storage(sweep)
    study = _study(sweep, storage, worker)
    life = TrialLife(sweep)
    budget = sweep.space.budget.trials
    streak = FailureStreak(sweep.max_failures_in_a_row)
    progress = Progress(on_progress, lambda: results(sweep, storage))
    last_stale_check, ran = 0.0, 0
    while True:
        raise_if_interrupted()  # a Ctrl-C the interpreter dropped (see search.interrupts)
        if time.monotonic() - last_stale_check > HEARTBEAT_S:  # staleness takes GRACE_S: no need per trial
            with chosen_features():
                optuna.storages.fail_stale_trials(study)
            if watch_owners:
                fail_dead_owners(sweep, study)
            last_stale_check = time.monotonic()
        trials = study.get_trials(deepcopy=False)
        counted = sum(1 for t in trials if t.state in (OptunaState.COMPLETE, OptunaState.PRUNED))
        running = [t for t in trials if t.state is OptunaState.RUNNING]
        if counted >= budget or (counted and out_of_time(sweep)):  # a first trial runs whatever the clock says
            return False
        if max_trials is not None and ran >= max_trials:  # its share done, and trials left: a fresh process goes on
            return True
        if counted + len(running) >= budget:  # the rest runs elsewhere: wait until it ends or is found dead
            if not _can_wait_for(storage, running):
                return False  # the sweep's end says it is short, and why
            time.sleep(WAIT_S)
            continue
        trial = None
        try:
            with chosen_features():
                trial = study.ask()
            # at once: a trial without an owner or a heartbeat looks orphaned to the next start
            for key, value in this_process().items():
                trial.set_user_attr(key, value)
            _beat_once(storage, study, trial)
            if _over_budget(study, trial, budget):
                continue  # another worker took the last place: wait with the others for the budget to be met
            error = _run_one(sweep, study, storage, trial, life)
        except KeyboardInterrupt:  # whatever moment Ctrl-C hits, the asked trial ends failed everywhere
            if trial is not None:
                abandon(sweep, study, trial, life, stop_reason())
            raise
        except Exception as exc:
            error = outage(sweep.store, sweep.tracking_uri, exc)  # a full disk, an MLflow server gone
            if error is None:
                raise
            if trial is not None:
                _abandon_in_an_outage(sweep, study, trial, life, error)
            raise error from None
        progress()
        streak.add(error)
        streak.check()
        ran += 1


def _abandon_in_an_outage(sweep: SweepConfig, study: optuna.Study, trial: optuna.Trial, life: TrialLife,
                          error: KerasweepError) -> None:
    """Fail the trial where it can be: on a full disk in both stores (the partly written files were removed,
    so a few rows usually fit), with the MLflow server gone in Optuna only (each MLflow call would retry for
    minutes). What does not fit or reach is failed by the next start, which finds the trial's process gone."""
    try:
        if isinstance(error, TrackingUnreachable):
            study.tell(trial.number, state=OptunaState.FAIL, skip_if_finished=True)
        else:
            abandon(sweep, study, trial, life, str(error))
    except Exception as exc:  # noqa: BLE001 - the stores' own errors in the outage: the next start cleans up
        if not is_outage(exc):
            raise


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _can_wait_for(storage: optuna.storages.BaseStorage, running: list[optuna.trial.FrozenTrial]) -> bool:
    """Whether a running trial's end will be seen: a storage with heartbeats tells of every one, and a
    trial whose owner's pid is readable here is failed when that pid is gone."""
    return _beats(storage) or all(checkable(t.user_attrs) for t in running)


def _beat_once(storage: optuna.storages.BaseStorage, study: optuna.Study, trial: optuna.Trial) -> None:
    """A first heartbeat as soon as a trial is asked: a trial that never beat is never stale to Optuna."""
    if _beats(storage):
        storage.record_heartbeat(_trial_id(storage, study, trial))


def _beats(storage: optuna.storages.BaseStorage) -> bool:
    """Whether the storage keeps heartbeats (RDB with an interval; the journal file keeps none)."""
    return bool(getattr(storage, "get_heartbeat_interval", lambda: None)())


def _trial_id(storage: optuna.storages.BaseStorage, study: optuna.Study, trial: optuna.Trial) -> int:
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name),
                                                           trial.number)


def _over_budget(study: optuna.Study, trial: optuna.Trial, budget: int) -> bool:
    """Another worker may have asked at the same moment; the later trial number gives way."""
    trials = study.get_trials(deepcopy=False)
    taken = sum(
        1
        for t in trials
        if t.state in (OptunaState.COMPLETE, OptunaState.PRUNED)
        or (t.state is OptunaState.RUNNING and t.number <= trial.number and not _discarded(t))
    )
    if taken <= budget:
        return False
    trial.set_user_attr(DISCARDED_ATTR, True)
    study.tell(trial, state=OptunaState.FAIL)
    return True


def _run_one(sweep: SweepConfig, study: optuna.Study, storage: optuna.storages.BaseStorage, trial: optuna.Trial,
             life: TrialLife) -> str | None:
    """Train one asked trial, tell Optuna and MLflow how it ended; returns the error, if any."""
    space = sweep.space
    asked = live_suggestions(trial, space) if builder_style(space) != "values" else None  # define-by-run
    values = dict(space.fixed) if asked is not None else resolve_values(space, suggest(trial, space))
    source = trial.user_attrs.get(RETRY_OF_ATTR)  # a retry continues from the last backup of the trial it retries
    resume = resume_point(sweep, source, trial.number) if source is not None else None
    previous = study.get_trials(deepcopy=False)[source] if resume is not None else None
    run_id = life.open(TrialStart(trial.number, values, retry_of=source, resume=resume,
                                  source_run=previous.user_attrs.get(RUN_ATTR) if previous else None))
    trial.set_user_attr(RUN_ATTR, run_id)
    multi = space.multi_objective  # Optuna takes no per-epoch reports for several objectives
    if previous is not None and resume is not None and not multi:  # the pruner sees the whole curve, as MLflow does
        for step, value in sorted(previous.intermediate_values.items()):
            if step <= resume.epoch:
                trial.report(value, step=step)
    metric = space.objective.metric
    prunes = not isinstance(study.pruner, optuna.pruners.NopPruner)  # asking a pruner that never prunes reads the trial

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        value = metrics.get(metric)
        if multi or value is None or not math.isfinite(value):
            return False
        with deferred_interrupts():  # both read and write the storage
            trial.report(value, step=epoch)  # the curve, for results and plots, pruner or not
            return prunes and trial.should_prune()

    files = life.files(trial.number)
    with _heartbeat(storage, study, trial), interruptible():
        outcome = run_trial(space, values, hooks=[life.epoch_logger(run_id), report], files=files, resume=resume,
                            suggestions=asked, debug=sweep.debug)
    trial.set_user_attr(RSS_ATTR, _peak_rss_mb())  # the worker's memory after it, to see growth per trial
    retries = int(trial.user_attrs.get(RETRIES_ATTR, 0))
    retry = outcome.state is TrialState.FAILED and retries < sweep.max_failures  # --max-failures
    if outcome.state is TrialState.COMPLETE:
        study.tell(trial, list(outcome.values) if multi else outcome.value)
    elif outcome.state is TrialState.PRUNED:
        study.tell(trial, state=OptunaState.PRUNED)
    else:
        trial.set_user_attr("kerasweep.error", outcome.error)
        study.tell(trial, state=OptunaState.FAIL)
    life.close(run_id, outcome, asked=asked, files=files, retry_coming=retry)
    if retry:  # the same values again, continuing from the last backup
        study.enqueue_trial(trial.params, user_attrs={RETRIES_ATTR: retries + 1, RETRY_OF_ATTR: trial.number,
                                                      CRASHES_ATTR: int(trial.user_attrs.get(CRASHES_ATTR, 0))})
    return outcome.error


@contextmanager
def _heartbeat(storage: optuna.storages.BaseStorage, study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Beat for a running trial so other workers can tell a live trial from a dead one (Optuna beats only
    inside `study.optimize`; ask-and-tell beats through the storage's public heartbeat API)."""
    if not _beats(storage):
        yield
        return
    trial_id = _trial_id(storage, study, trial)
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            storage.record_heartbeat(trial_id)
            stop.wait(HEARTBEAT_S)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
