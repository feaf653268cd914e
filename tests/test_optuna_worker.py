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


def _opened(study: optuna.Study, tracker: Any, parent: str, owner: str) -> optuna.Trial:
    """A trial asked by the command with pid `owner` on this machine, its MLflow run opened and recorded."""
    import socket

    import kerasweep.search.engines.optuna as engine

    trial = study.ask()
    trial.set_user_attr(engine.OWNER_ATTR, f"{socket.gethostname()}:{owner}")
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

    config, tracker, parent = _sweep(tmp_path)
    study = engine._study(config, engine.make_storage(config))
    dead = _dead_pid()

    orphan = _opened(study, tracker, parent, dead).number  # its process was killed
    close_finished = engine._close_runs_of_finished_trials
    late = []

    def meanwhile(*args: Any) -> None:  # after start-up read the running trials, a live command asks and opens one
        late.append(_opened(study, tracker, parent, str(os.getpid())).number)
        close_finished(*args)

    monkeypatch.setattr(engine, "_close_runs_of_finished_trials", meanwhile)
    engine._fail_orphans(config, study)

    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    runs = {int(r.data.tags["kerasweep.trial"]): r for r in tracker.trial_runs(parent)}
    # Rule: the dead process's trial ends failed in both stores, with the reason
    assert states[orphan] == "FAIL" and runs[orphan].info.status == "FAILED"
    assert runs[orphan].data.tags["kerasweep.error"] == engine.ORPHAN_REASON
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
    engine._fail_orphans(config, study)
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
