"""Optuna engine: a sweep killed (SIGKILL) or interrupted (Ctrl-C) loses nothing when re-run."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from kerasweep.search.store import Store
from tests.conftest import mlflow_client, read_only_url, run_cli, start_cli, sweep_runs, wait_or_kill, wait_for

TRIALS = 6
ARGS = ["mlp", "--trials", str(TRIALS), "--epochs", "8", "--name", "crashy", "--pruner", "none"]


def _optuna_states(store: Path) -> list[str]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name="crashy", storage=read_only_url(store / "optuna.db"))
    except Exception:  # noqa: BLE001 - not created yet
        return []
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def _early_running(store: Path) -> bool:
    """A trial is RUNNING and has reported at most half of its epochs: a kill now lands inside it."""
    import optuna

    try:
        study = optuna.load_study(study_name="crashy", storage=read_only_url(store / "optuna.db"))
    except Exception:  # noqa: BLE001 - not created yet
        return False
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return any(1 <= len(t.intermediate_values) <= 4 for t in running)


def _start(store: Path, *extra: str) -> subprocess.Popen:
    return start_cli("sweep", *ARGS, *extra, "--store", str(store))


def _assert_consistent(store: Path, budget: int = TRIALS) -> None:
    states = _optuna_states(store)
    parents, runs = sweep_runs(mlflow_client(store), "mlp", "crashy")
    # Rule: exactly the budget of complete/pruned trials, nothing left RUNNING in Optuna or MLflow
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == budget, states
    assert "RUNNING" not in states
    assert not [r for r in runs if r.info.status == "RUNNING"]
    # Rule: one parent run, one MLflow run per Optuna trial, states that agree
    assert len(parents) == 1
    assert len(runs) == len(states)
    by_number = {int(r.data.tags["kerasweep.trial"]): r.data.tags["kerasweep.state"] for r in runs}
    names = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
    assert by_number == {i: names[s] for i, s in enumerate(states)}


@pytest.mark.parametrize("moment", [pytest.param("during start-up", marks=pytest.mark.slow), "mid-trial"])
def test_sigkill_then_rerun_finishes_the_budget(tmp_path: Path, moment: str) -> None:
    store = tmp_path / "store"
    for _ in range(3):  # a kill that lands between two trials leaves none RUNNING: that try is just resumed
        proc = _start(store, "--trials", "40")  # more than it can finish before the kill, even on a slow machine
        if moment == "during start-up":  # the study exists, the first trial is loading data or building
            wait_for(lambda: "RUNNING" in _optuna_states(store), proc)
        else:  # some trials done, one early in its epochs
            wait_for(lambda: _optuna_states(store).count("COMPLETE") >= 2 and _early_running(store), proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if "RUNNING" in _optuna_states(store):
            break
    assert "RUNNING" in _optuna_states(store)  # the kill left a trial behind

    budget = sum(s in ("COMPLETE", "PRUNED") for s in _optuna_states(store)) + 2
    again = run_cli("sweep", *ARGS, "--trials", str(budget), "--store", str(store))
    assert again.returncode == 0, again.stderr + again.stdout
    # Rule: the trial lost to the crash ends as failed (in both stores) and does not eat the budget
    assert _optuna_states(store).count("FAIL") == 1
    _assert_consistent(store, budget)
    _, runs = sweep_runs(mlflow_client(store), "mlp", "crashy")
    failed = [r for r in runs if r.data.tags["kerasweep.state"] == "failed"]
    assert failed[0].data.tags["kerasweep.error"] == "worker process died during the trial"


def _running_backup(store: Path) -> tuple[int, int] | None:
    """The running trial's number and the epochs its backup holds, once it has one."""
    import optuna

    from kerasweep.trainers.fit import latest_backup

    try:
        study = optuna.load_study(study_name="crashy", storage=read_only_url(store / "optuna.db"))
    except Exception:  # noqa: BLE001 - not created yet
        return None
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        backup = latest_backup(Store(store).backups("crashy", t.number))
        if backup is not None:
            return t.number, backup.epoch
    return None


def test_killed_trial_continues_from_its_last_saved_epoch_on_rerun(tmp_path: Path) -> None:
    store = tmp_path / "store"
    longer = ["--epochs", "30", "--checkpoint-every", "0"]  # a backup every epoch, time to kill mid-trial
    proc = _start(store, "--trials", "40", *longer)
    wait_for(lambda: (_running_backup(store) or (0, 0))[1] >= 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    killed, saved = _running_backup(store)
    killed_run = {int(r.data.tags["kerasweep.trial"]): r for r in sweep_runs(mlflow_client(store), "mlp", "crashy")[1]}[killed]

    budget = sum(s in ("COMPLETE", "PRUNED") for s in _optuna_states(store)) + 1
    again = run_cli("sweep", *ARGS, *longer, "--trials", str(budget), "--store", str(store))
    assert again.returncode == 0, again.stderr + again.stdout
    _assert_consistent(store, budget)
    client = mlflow_client(store)
    _, runs = sweep_runs(client, "mlp", "crashy")
    # Rule: the killed trial is retried from its last saved epoch, not from scratch
    retries = [r for r in runs if r.data.tags.get("kerasweep.retry_of") == str(killed)]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.data.tags["kerasweep.resumed_from_epoch"] == str(saved)
    assert retry.data.tags["kerasweep.state"] in ("complete", "pruned")
    # Rule: its metric history continues the killed trial's: each epoch once, in order, the first ones copied
    history = client.get_metric_history(retry.info.run_id, "val_accuracy")
    steps = [m.step for m in history]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > saved
    before = {m.step: m.value for m in client.get_metric_history(killed_run.info.run_id, "val_accuracy")}
    assert {m.step: m.value for m in history if m.step <= saved} == {e: before[e] for e in range(1, saved + 1)}
    # Rule: backups are gone once nothing needs them
    assert not list((store / "checkpoints" / "crashy").glob("trial-*/resume/*.keras"))


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = _start(store, "--trials", "40")  # a budget it cannot finish before the Ctrl-C, even on a slow machine
    wait_for(lambda: _optuna_states(store).count("COMPLETE") >= 1 and "RUNNING" in _optuna_states(store), proc)
    proc.send_signal(signal.SIGINT)
    out, err = wait_or_kill(proc, 60)
    # Rule: Ctrl-C ends the running trial as failed in both stores and says how to resume (exit 130)
    assert proc.returncode == 130, out + err
    assert "Re-run the same command to resume" in err
    assert "RUNNING" not in _optuna_states(store)
    parents, runs = sweep_runs(mlflow_client(store), "mlp", "crashy")
    assert parents[0].info.status == "KILLED"
    assert not [r for r in runs if r.info.status == "RUNNING"]

    budget = sum(s in ("COMPLETE", "PRUNED") for s in _optuna_states(store)) + 2
    again = run_cli("sweep", *ARGS, "--trials", str(budget), "--store", str(store))
    assert again.returncode == 0, again.stderr
    _assert_consistent(store, budget)


def test_crashes_at_the_narrowest_moments_are_repaired_on_rerun(tmp_path: Path) -> None:
    """Two states a SIGKILL can leave that a timed kill rarely hits: right after Optuna's `ask` (no owner,
    no MLflow run) and while logging (Optuna told, the MLflow run not yet closed)."""
    import optuna

    from kerasweep.search.engines.optuna import RUN_ATTR
    from kerasweep.search.tracking import Tracker, tracking_uri_for

    store = tmp_path / "store"
    first = run_cli("sweep", *ARGS, "--trials", "1", "--store", str(store))
    assert first.returncode == 0, first.stderr
    study = optuna.load_study(study_name="crashy", storage=f"sqlite:///{store / 'optuna.db'}")
    study.ask()  # trial 1: what a process killed at once after asking left
    logged = study.ask()  # trial 2: one killed while logging its end
    tracker = Tracker(tracking_uri_for(store))
    parents, _ = sweep_runs(mlflow_client(store), "mlp", "crashy")
    run_id = tracker.start_trial(parents[0].info.run_id, "crashy", logged.number, {})
    tracker.log_epoch(run_id, 1, {"val_accuracy": 0.5})
    logged.set_user_attr(RUN_ATTR, run_id)
    study.tell(logged, 0.5)

    again = run_cli("sweep", *ARGS, "--trials", "3", "--store", str(store))
    assert again.returncode == 0, again.stderr + again.stdout
    # Rule: the trial lost right after ask is failed in both stores; the one killed while logging keeps
    # the state Optuna recorded, in MLflow too
    assert _optuna_states(store) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    _assert_consistent(store, 3)
    _, runs = sweep_runs(mlflow_client(store), "mlp", "crashy")
    by_number = {r.data.tags["kerasweep.trial"]: r for r in runs}
    assert by_number["1"].data.tags["kerasweep.error"] == "worker process died during the trial"
    assert by_number["2"].info.status == "FINISHED" and by_number["2"].data.tags["kerasweep.value"] == "0.5"


def test_a_retry_takes_over_the_copy_it_continues_from(tmp_path: Path) -> None:
    """A retry killed before saving a copy of its own must still find the one it continued from."""
    from kerasweep.search.engines.optuna_recovery import take_over_backup as _take_over_backup
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config
    from kerasweep.trainers.fit import ResumePoint, latest_backup

    config = make_config(load_space("mlp"), name="crashy", store=tmp_path / "store")
    store = config.store
    store.backups("crashy", 0).mkdir(parents=True)
    (store.backups("crashy", 0) / "epoch-3.keras").write_bytes(b"model")
    taken = _take_over_backup(config, source=0, number=1)
    # Rule: the copy now belongs to the retry (trial 1), so a retry of the retry resumes from it too;
    # nothing is left under the trial it came from
    assert taken == ResumePoint(store.backups("crashy", 1) / "epoch-3.keras", 3)
    assert latest_backup(store.backups("crashy", 1)) == taken
    assert not store.trial_folder("crashy", 0).exists()
