"""The optuna engine's worker loop with training stubbed out: what it reads and writes per trial."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna
import pytest

SPACE = """name: worker
model: mlp
data: iris
budget: {{trials: {trials}, epochs: 3}}
search: {{sampler: random, pruner: {pruner}}}
params:
  learning_rate: {{type: float, low: 1.0e-4, high: 1.0e-1, log: true}}
"""
TRIALS = 4


def _stub_trial(space: Any, values: dict[str, Any], hooks: Any = (), **_: Any) -> Any:
    """Three epochs of made-up metrics through the engine's hooks, as the training loop reports them."""
    from kerasweep.search.results import TrialState
    from kerasweep.search.trial import TrialOutcome

    for epoch in (1, 2, 3):
        value = 0.1 * epoch
        for hook in hooks:
            hook(epoch, {"loss": 1.0 / epoch, "val_accuracy": value})
    return TrialOutcome(TrialState.COMPLETE, value=0.3, best_epoch=2, epochs=3)


def _sweep(tmp_path: Path, pruner: str = "none") -> tuple[Any, Any, str]:
    """A sweep of the worker space with its MLflow parent run open: (config, tracker, parent run id)."""
    from kerasweep.search.lifecycle import tracker_of
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config

    space_file = tmp_path / "worker.yaml"
    space_file.write_text(SPACE.format(trials=TRIALS, pruner=pruner))
    config = make_config(load_space(space_file), name="w", store=tmp_path / "store")
    config.store.root.mkdir(parents=True)
    tracker = tracker_of(config)
    parent = tracker.start_sweep("worker", "w", None, {"engine": "optuna"})
    return dataclasses.replace(config, parent_run_id=parent, tracking_uri=tracker.tracking_uri), tracker, parent


def _opened(study: optuna.Study, tracker: Any, parent: str, owner: str, scope: str | None = None) -> optuna.Trial:
    """A trial asked by the command with pid `owner` on this machine (in this PID namespace, or in `scope`),
    its MLflow run opened and recorded."""
    import kerasweep.search.engines.optuna as engine
    from kerasweep.search.engines import owners

    trial = study.ask()
    for key, value in owners.this_process(int(owner)).items():
        trial.set_user_attr(key, value)
    if scope is not None:
        trial.set_user_attr(owners.SCOPE_ATTR, scope)
    trial.set_user_attr(engine.RUN_ATTR, tracker.start_trial(parent, "w", trial.number, {}))
    return trial


def _dead_pid() -> str:
    """The pid of a process that has exited (an owner whose command was killed)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("pruner", ["none", "hyperband"])
def test_a_worker_opens_its_storage_once_records_each_epoch_and_asks_only_a_pruner_that_prunes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pruner: str) -> None:
    import kerasweep.search.engines.optuna as engine

    config, tracker, parent = _sweep(tmp_path, pruner)

    opened, asked, shown = [], [], []
    make_storage = engine.make_storage
    monkeypatch.setattr(engine, "make_storage", lambda sweep: opened.append(1) or make_storage(sweep))
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda trial: asked.append(trial.number) or False)
    monkeypatch.setattr(engine, "run_trial", _stub_trial)
    engine.work(config, 0, shown.append)

    # Rule: one storage per worker, the live view's reads included (opening one checks its schema: 0.1 s)
    assert len(opened) == 1 and shown and shown[0].trials
    # Rule: every epoch's value is in the study (results and plots read the curve), pruner or not
    trials = engine.results(config).trials
    assert len(trials) == TRIALS
    assert all(t.intermediate == pytest.approx({1: 0.1, 2: 0.2, 3: 0.3}) and t.epochs == 3 for t in trials)
    # Rule: a pruner that never prunes is not asked after each epoch (asking reads the trial back)
    assert len(asked) == (0 if pruner == "none" else 3 * TRIALS)
    assert len(tracker.trial_runs(parent)) == TRIALS


def test_start_up_fails_a_dead_process_trial_and_keeps_one_another_command_opens_meanwhile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second command's start-up, while the first opens a trial's run: that run lives on (CI once saw it
    failed as "worker process died", the first command still training it)."""
    import os

    import kerasweep.search.engines.optuna as engine
    import kerasweep.search.engines.optuna_recovery as recovery

    config, tracker, parent = _sweep(tmp_path)
    study = engine._study(config, engine.make_storage(config))
    dead = _dead_pid()

    orphan = _opened(study, tracker, parent, dead).number  # its process was killed
    close_finished = recovery.close_runs_of_finished_trials
    late = []

    def meanwhile(*args: Any) -> None:  # after start-up read the running trials, a live command asks and opens one
        late.append(_opened(study, tracker, parent, str(os.getpid())).number)
        close_finished(*args)

    monkeypatch.setattr(recovery, "close_runs_of_finished_trials", meanwhile)
    recovery.fail_orphans(config, study)

    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    runs = {int(r.data.tags["kerasweep.trial"]): r for r in tracker.trial_runs(parent)}
    # Rule: the dead process's trial ends failed in both stores, with the reason
    assert states[orphan] == "FAIL" and runs[orphan].info.status == "FAILED"
    assert runs[orphan].data.tags["kerasweep.error"] == recovery.ORPHAN_REASON
    # Rule: the live command's trial and its run stay running
    assert states[late[0]] == "RUNNING" and runs[late[0]].info.status == "RUNNING"


def test_the_store_check_passes_a_run_another_command_opened_after_mlflow_was_read(tmp_path: Path) -> None:
    """Two commands on one storage: the second's start-up check read MLflow, then the first opened a run and
    recorded it in Optuna before the check read Optuna (CI saw the second refuse to start). A run id that
    this MLflow store does not hold is still named lost."""
    import kerasweep.search.engines.optuna as engine

    config, tracker, parent = _sweep(tmp_path)
    study = engine._study(config, engine.make_storage(config))
    logged = {int(r.data.tags["kerasweep.trial"]) for r in tracker.trial_runs(parent)}  # what the check read first
    _opened(study, tracker, parent, "1")
    # Rule: the live command's new run is no sign of a reset store
    assert engine.check_stores(config, logged, parent_exists=True) is None
    gone = study.ask()
    gone.set_user_attr(engine.RUN_ATTR, "0" * 32)  # recorded, but held by another MLflow store
    problem = engine.check_stores(config, logged, parent_exists=True)
    # Rule: a run this store does not hold is named, with what to do
    assert problem is not None and f"the runs of trials {gone.number} are missing" in problem


def test_start_up_leaves_a_finished_trial_a_live_command_is_closing(tmp_path: Path) -> None:
    """Between telling Optuna and closing the MLflow run, a live command's trial looks like one a crash left
    open; another command's start-up closed it and removed the checkpoint the live one was about to log.
    One whose owner is gone is still closed as Optuna recorded it."""
    import os

    import kerasweep.search.engines.optuna as engine
    import kerasweep.search.engines.optuna_recovery as recovery

    config, tracker, parent = _sweep(tmp_path)
    study = engine._study(config, engine.make_storage(config))
    dead = _dead_pid()

    def told(owner: str) -> int:  # told Optuna, its run not yet closed, its checkpoint not yet logged
        trial = _opened(study, tracker, parent, owner)
        config.store.checkpoint("w", trial.number).parent.mkdir(parents=True, exist_ok=True)
        config.store.checkpoint("w", trial.number).write_bytes(b"model")
        study.tell(trial, 0.5)
        return trial.number

    closing, crashed = told(str(os.getpid())), told(dead)
    recovery.fail_orphans(config, study)
    runs = {int(r.data.tags["kerasweep.trial"]): r for r in tracker.trial_runs(parent)}
    # Rule: the live command's run and checkpoint are left to it
    assert runs[closing].info.status == "RUNNING" and config.store.checkpoint("w", closing).exists()
    # Rule: the crashed command's run is closed as Optuna recorded the trial
    assert runs[crashed].info.status == "FINISHED" and runs[crashed].data.tags["kerasweep.state"] == "complete"


def test_opening_the_storage_warns_of_no_deprecated_optuna_argument(tmp_path: Path) -> None:
    import warnings

    from kerasweep.search.engines.optuna import make_storage
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config

    config = make_config(load_space("mlp"), store=tmp_path / "store", check_data_files=False)
    config.store.root.mkdir(parents=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_storage(config)
    # Rule: kerasweep's own calls use Optuna's current arguments (failed_trial_callback goes in Optuna 6.0)
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]


def test_a_trial_owned_in_another_pid_namespace_is_left_to_the_heartbeat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two containers with one hostname on one storage: a pid that does not exist here may be a live
    process there (the second command's start-up failed the first's live trials at epochs 22 and 17)."""
    import time

    import kerasweep.search.engines.optuna as engine
    import kerasweep.search.engines.optuna_recovery as recovery

    monkeypatch.setattr(engine, "GRACE_S", 1)  # the storage's heartbeat grace, short for the test
    config, tracker, parent = _sweep(tmp_path)
    storage = engine.make_storage(config)
    study = engine._study(config, storage)
    elsewhere = _opened(study, tracker, parent, _dead_pid(), scope="another-boot/pid:[4026532999]")
    engine._beat_once(storage, study, elsewhere)  # its owner beats, there
    recovery.fail_orphans(config, study)
    runs = {int(r.data.tags["kerasweep.trial"]): r for r in tracker.trial_runs(parent)}
    # Rule: a pid of another namespace says nothing here: the trial and its run live on while it beats
    assert study.get_trials()[elsewhere.number].state.name == "RUNNING"
    assert runs[elsewhere.number].info.status == "RUNNING"

    time.sleep(2.5)  # its owner stopped beating for longer than the grace
    recovery.fail_orphans(config, study)
    runs = {int(r.data.tags["kerasweep.trial"]): r for r in tracker.trial_runs(parent)}
    # Rule: the heartbeat decides: a stale trial ends failed in both stores, with the heartbeat's reason
    assert study.get_trials()[elsewhere.number].state.name == "FAIL"
    assert runs[elsewhere.number].info.status == "FAILED"
    assert runs[elsewhere.number].data.tags["kerasweep.error"] == recovery.STALE_REASON


def test_a_worker_waits_for_a_trial_running_elsewhere_and_replaces_it_when_its_process_dies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One of two commands killed: the other used to end at "3/4 trials, 1 running", exit 0, the dead
    command's trial RUNNING in both stores."""
    import subprocess
    import sys
    import threading

    import kerasweep.search.engines.optuna as engine
    import kerasweep.search.engines.optuna_recovery as recovery

    monkeypatch.setattr(engine, "HEARTBEAT_S", 0.5)  # how often the worker looks for dead owners
    monkeypatch.setattr(engine, "run_trial", _stub_trial)
    config, tracker, parent = _sweep(tmp_path)
    study = engine._study(config, engine.make_storage(config))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(6)"])  # the other command, alive
    threading.Thread(target=other.wait, daemon=True).start()  # reaped when it ends, as a command not ours is
    try:
        theirs = _opened(study, tracker, parent, str(other.pid)).number
        engine.work(config, 0, lambda result: None)
    finally:
        other.kill()
    states = [t.state.name for t in study.get_trials()]
    runs = {int(r.data.tags["kerasweep.trial"]): r for r in tracker.trial_runs(parent)}
    # Rule: the budget is met by trials that ended; the dead command's trial failed in both stores
    assert states.count("COMPLETE") == TRIALS and "RUNNING" not in states, states
    assert states[theirs] == "FAIL" and runs[theirs].info.status == "FAILED"
    assert runs[theirs].data.tags["kerasweep.error"] == recovery.ORPHAN_REASON
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]


def test_a_sweep_short_of_its_budget_never_ends_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial on another machine of a journal storage (no heartbeat) cannot be seen to end: the command
    says so and fails, instead of exit 0 with the budget unmet."""
    import kerasweep.search.engines.optuna as engine
    from kerasweep.search.errors import SweepAborted
    from kerasweep.search.sweep import run_sweep

    monkeypatch.setattr(engine, "run_trial", _stub_trial)
    config, tracker, _ = _sweep(tmp_path)
    journal = str(tmp_path / "optuna.journal")
    config = dataclasses.replace(config, options=engine.Options(storage=journal, workers=1))
    study = engine._study(config, engine.make_storage(config))
    far = study.ask()  # owned by a process of another machine
    far.set_user_attr("kerasweep.owner", "elsewhere:12")
    far.set_user_attr("kerasweep.owner_scope", "another-boot/pid:[1]")
    with pytest.raises(SweepAborted, match=f"stopped at {TRIALS - 1} of {TRIALS} trials .*1 still running"):
        run_sweep(config)
    parent = tracker.find_sweep_run("worker", "w")
    # Rule: the parent run ends FAILED with the reason, not FINISHED
    assert tracker.client.get_run(parent).info.status == "FAILED"


def test_each_resume_draws_from_a_new_recorded_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With one seed per sweep, every command replayed the same draws (trial 5 repeated trial 2), a
    process-killing config included."""
    import kerasweep.search.engines.optuna as engine

    monkeypatch.setattr(engine, "run_trial", _stub_trial)
    config, tracker, parent = _sweep(tmp_path)
    engine.run(dataclasses.replace(config, space=config.space.with_overrides(trials=2)), lambda result: None)
    engine.run(config, lambda result: None)  # resumed to the full budget
    study = optuna.load_study(study_name="w", storage=engine.make_storage(config))
    trials = study.get_trials()
    seeds = study.user_attrs[engine.SEEDS_ATTR]
    # Rule: the first command draws from the space's seed, the resume from another, both recorded
    assert len(seeds) == 2 and seeds[0] == config.space.search.seed and seeds[1] != seeds[0]
    assert tracker.client.get_run(parent).data.tags[engine.SEEDS_ATTR] == ",".join(map(str, seeds))
    # Rule: the resume's first draw is not the first command's first draw again (trial 0 is the defaults)
    assert trials[2].params != trials[1].params


@pytest.mark.parametrize("crashes_before", [0, 2])
def test_a_config_that_killed_its_process_three_times_is_not_retried_again(
        tmp_path: Path, crashes_before: int) -> None:
    import kerasweep.search.engines.optuna as engine
    import kerasweep.search.engines.optuna_recovery as recovery

    config, tracker, parent = _sweep(tmp_path)
    study = engine._study(config, engine.make_storage(config))
    killed = _opened(study, tracker, parent, _dead_pid())
    killed.set_user_attr(recovery.CRASHES_ATTR, crashes_before)  # a retry of a config whose process died before
    backups = config.store.backups("w", killed.number)
    backups.mkdir(parents=True)
    (backups / "epoch-1.keras").write_bytes(b"model")
    recovery.fail_orphans(config, study)
    retries = [t for t in study.get_trials() if t.state.name == "WAITING"]
    run = {int(r.data.tags["kerasweep.trial"]): r for r in tracker.trial_runs(parent)}[killed.number]
    if crashes_before == 0:
        # Rule: a first crash is retried from the backup, the crash counted on the retry
        assert [t.user_attrs[recovery.CRASHES_ATTR] for t in retries] == [1]
        assert run.data.tags["kerasweep.error"] == recovery.ORPHAN_REASON
    else:
        # Rule: the third crash is the last: no retry, and the run says why
        assert retries == []
        assert "died 3 times" in run.data.tags["kerasweep.error"] and run.info.status == "FAILED"


def test_a_full_disk_stops_the_sweep_with_one_line_and_nothing_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk filled while a trial saved its checkpoint: 56- and 147-line tracebacks, parent and trial left
    RUNNING, the trial's reason "worker process died"."""
    import errno

    import kerasweep.trainers.fit as fit
    from kerasweep.search.errors import DiskFull
    from kerasweep.search.sweep import run_sweep

    config, tracker, _ = _sweep(tmp_path)
    target = str(config.store.checkpoint("w", 1))

    def fills_up(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device", target)

    monkeypatch.setattr(fit, "train", fills_up)
    with pytest.raises(DiskFull) as raised:
        run_sweep(config)
    message = str(raised.value)
    # Rule: one line naming the store, the file, the free space and the fix
    assert "\n" not in message and message.startswith(f"{config.store.root}: the disk is full writing {target}")
    assert "MB free" in message and "re-run the same command" in message
    study = optuna.load_study(study_name="w", storage=f"sqlite:///{config.store.optuna_db}")
    parent = tracker.find_sweep_run("worker", "w")
    runs = tracker.trial_runs(parent)
    # Rule: the first trial is failed in both stores with that reason; no second trial was started
    assert [t.state.name for t in study.get_trials()] == ["FAIL"]
    assert [r.info.status for r in runs] == ["FAILED"] and runs[0].data.tags["kerasweep.error"] == message
    assert tracker.client.get_run(parent).info.status == "FAILED"


def test_a_store_on_a_nearly_full_disk_is_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import kerasweep.search.store as store_module
    from kerasweep.search.errors import UserInputError

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(store_module.shutil, "disk_usage", lambda path: usage._replace(free=3 * 2**20))
    with pytest.raises(UserInputError, match=r"--store: .*store has 3.0 MB free on its disk; a sweep needs at least "
                                             r"100.0 MB"):
        store_module.check_store(tmp_path / "store")
    # Rule: nothing was created
    assert not (tmp_path / "store").exists()
