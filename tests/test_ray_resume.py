"""Ray engine: Ctrl-C mid-sweep and a re-run that restores the Tune experiment; broken state is reported."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import mlflow_client, run_cli, start_cli, sweep_runs, wait_or_kill, wait_for

ARGS = ["mlp", "--engine", "ray", "--trials", "8", "--epochs", "6", "--name", "resumable"]


def _completed_trials(store: Path) -> int:
    """Completed trials, from Ray's own files: polling MLflow here would race the sweep's store set-up."""
    return len(list((store / "ray" / "resumable").glob("trainable_*/checkpoint_*")))


@pytest.mark.slow  # about a minute; CI runs it with make test-slow
def test_interrupted_ray_sweep_resumes_to_its_budget(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = start_cli("sweep", *ARGS, "--store", str(store))
    wait_for(lambda: _completed_trials(store) >= 1, proc, 240, 0.5, "one completed trial")
    proc.send_signal(signal.SIGINT)
    out, err = wait_or_kill(proc, 120)
    # Rule: Ctrl-C stops the sweep cleanly: exit 130, a message saying how to resume, no run left RUNNING
    assert proc.returncode == 130, out + err
    assert "Re-run the same command to resume" in err
    parents, runs = sweep_runs(mlflow_client(store), "mlp", "resumable")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert parents[0].info.status == "KILLED"

    again = run_cli("sweep", *ARGS, "--store", str(store))
    assert again.returncode == 0, again.stderr + again.stdout
    assert "Resuming sweep resumable" in " ".join(again.stdout.split())
    parents, runs = sweep_runs(mlflow_client(store), "mlp", "resumable")
    states = [r.data.tags["kerasweep.state"] for r in runs]
    # Rule: the re-run restores the experiment and ends with its budget, one parent, no number twice
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sum(s in ("complete", "pruned") for s in states) == 8
    numbers = [int(r.data.tags["kerasweep.trial"]) for r in runs]
    assert len(numbers) == len(set(numbers))


def test_truncated_ray_state_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "ray" / "resumable").mkdir(parents=True)
    (store / "ray" / "resumable" / "junk.txt").write_text("not an experiment")
    proc = run_cli("sweep", *ARGS, "--store", str(store))
    # Rule: a missing or truncated experiment state is bad input with a way out, not a traceback
    assert proc.returncode == 2
    assert "Ray experiment state is missing or truncated" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


def _trial_checkpoint_epochs(store: Path, name: str) -> list[int]:
    """Epochs of the resumable copies Tune holds as checkpoints, from Ray's own files."""
    from kerasweep.search.store import Store
    from kerasweep.trainers.fit import latest_backup

    found = [latest_backup(p) for p in Store(store).ray_experiment(name).glob("trainable_*/checkpoint_*")]
    return [f.epoch for f in found if f is not None]


def _ray_trial_processes(sweep_pid: int) -> list[int]:
    """The Ray worker processes training this sweep's trials (its local Ray runs under the sweep)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            pass
    below, grew = {sweep_pid}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in below} - below
        below |= more
        grew = bool(more)
    found = []
    for pid in below - {sweep_pid}:
        try:
            if b"ImplicitFunc" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


@pytest.mark.slow  # about a minute and a half; CI runs it with make test-slow
def test_ray_trial_whose_worker_died_continues_from_its_checkpoint(tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ["mlp", "--engine", "ray", "--trials", "3", "--epochs", "40", "--name", "retried", "--pruner", "none",
            "--max-failures", "1", "--checkpoint-every", "0", "--store", str(store)]
    proc = start_cli("sweep", *args)
    wait_for(lambda: max(_trial_checkpoint_epochs(store, "retried"), default=0) >= 2, proc, 240, 0.2,
             "a trial checkpoint at epoch 2")
    victims = _ray_trial_processes(proc.pid)
    assert victims, "no Ray trial process found"
    for pid in victims:  # the worker dies (OOM killer, lost node): Tune retries its trial
        os.kill(pid, signal.SIGKILL)
    out, err = wait_or_kill(proc, 400)
    assert proc.returncode == 0, out + err

    client = mlflow_client(store)
    _, runs = sweep_runs(client, "mlp", "retried")
    by_number = {int(r.data.tags["kerasweep.trial"]): r for r in runs}
    retries = [r for r in runs if "kerasweep.retry_of" in r.data.tags]
    # Rule: the attempt that died ends failed; its retry is a new run that continues from the saved epoch
    assert retries
    for retry in retries:
        failed = by_number[int(retry.data.tags["kerasweep.retry_of"])]
        assert failed.data.tags["kerasweep.state"] == "failed"
        assert retry.data.tags["kerasweep.state"] in ("complete", "pruned")
    resumed = [r for r in retries if "kerasweep.resumed_from_epoch" in r.data.tags]
    assert resumed
    for retry in resumed:
        saved = int(retry.data.tags["kerasweep.resumed_from_epoch"])
        assert saved >= 1
        steps = [m.step for m in client.get_metric_history(retry.info.run_id, "val_accuracy")]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) > saved  # each epoch once, in order
    # Rule: the budget is met and nothing stays RUNNING
    assert sum(r.data.tags["kerasweep.state"] in ("complete", "pruned") for r in runs) == 3
    assert not [r for r in runs if r.info.status == "RUNNING"]
