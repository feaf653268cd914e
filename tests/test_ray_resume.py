"""Ray engine: Ctrl-C mid-sweep and a re-run that restores the Tune experiment; broken state is reported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import QUIET_ENV, ROOT, mlflow_client, run_cli, sweep_runs

ARGS = ["mlp", "--engine", "ray", "--trials", "8", "--epochs", "6", "--name", "resumable"]


def _completed_trials(store: Path) -> int:
    """Completed trials, from Ray's own files: polling MLflow here would race the sweep's store set-up."""
    return len(list((store / "ray" / "resumable").glob("trainable_*/checkpoint_*")))


@pytest.mark.slow  # about a minute; CI runs it with make test-slow
def test_interrupted_ray_sweep_resumes_to_its_budget(tmp_path: Path) -> None:
    store = tmp_path / "store"
    kerasweep = str(Path(sys.executable).with_name("kerasweep"))
    proc = subprocess.Popen([kerasweep, "sweep", *ARGS, "--store", str(store)], cwd=ROOT,
                            env={**os.environ, **QUIET_ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    deadline = time.time() + 240
    while _completed_trials(store) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
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
