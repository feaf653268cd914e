"""A disk that really fills up mid-sweep (slow; a tmpfs of its own, so root and `mount` are needed):
one line naming the store and the free space, a non-zero exit, and, once space is freed, the same
command finishes the budget with nothing left RUNNING (issue 32, item 6)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    mlflow_client, optuna_trials, read_only_url, run_cli, start_cli, sweep_runs, wait_for, wait_or_kill, write_space,
)

pytestmark = pytest.mark.slow

SPACE = """
    name: full
    model: mlp
    data: iris
    budget: {trials: 2, epochs: 60}
    search: {sampler: random, pruner: none, seed: 1}
    params:
      units: {type: int, low: 4, high: 8}
    fixed: {learning_rate: 0.05, batch_size: 1, patience: 100}
"""  # 120 steps an epoch: a trial trains for about 20 s


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 160 MB tmpfs: room for the pre-flight check (100 MB free), little more."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()[:200]})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Write zeros until the disk is full; returns the file."""
    filler = folder / "filler"
    with open(filler, "wb") as out:
        block = b"\0" * 2**20
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_disk_that_fills_mid_sweep_is_one_line_and_the_rerun_finishes(small_disk: Path, tmp_path: Path) -> None:
    store = small_disk / "store"
    space = write_space(tmp_path, SPACE)
    args = ("sweep", str(space), "--store", str(store), "--checkpoint-every", "0")
    proc = start_cli(*args)

    def training() -> bool:
        try:
            import optuna

            study = optuna.load_study(study_name="full", storage=read_only_url(store / "optuna.db"))
        except Exception:  # noqa: BLE001 - not created yet
            return False
        return any(t.intermediate_values for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)))

    wait_for(training, proc, 240, 0.2, "a trial training")
    filler = _fill(small_disk)
    out, err = wait_or_kill(proc, 300)
    lines = [line for line in err.splitlines() if line.strip()]
    # Rule: one line naming the store, saying the disk is full and what to do; no traceback
    assert proc.returncode in (1, 2), out + err
    assert "Traceback" not in err and len(lines) == 1, err
    assert f"{store}: the disk is full" in err and "MB free" in err and "re-run the same command" in err, err

    filler.unlink()
    rerun = run_cli(*args)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    parents, runs = sweep_runs(mlflow_client(store), "full", "full")
    # Rule: once there is room, the same command meets the budget and leaves nothing RUNNING in either store
    assert sum(r.data.tags.get("kerasweep.state") == "complete" for r in runs) == 2
    assert "RUNNING" not in [r.info.status for r in [*parents, *runs]]
    assert "RUNNING" not in [t.state.name for t in optuna_trials(store, "full")]
