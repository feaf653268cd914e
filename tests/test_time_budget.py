"""`budget.minutes` / `--minutes`: no trial starts after the time budget, on every engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from kerasweep.search.engines import ENGINES
from tests.conftest import invoke_cli, mlflow_client, run_cli, sweep_runs, write_space


@pytest.mark.parametrize("engine", [e if e == "optuna" else pytest.param(e, marks=pytest.mark.slow)  # 20-30 s each
                                    for e in ENGINES])
def test_no_trial_starts_after_the_time_budget(tmp_path: Path, engine: str) -> None:
    space = write_space(tmp_path, """
        name: timed
        model: mlp
        data: iris
        budget: {trials: 500, epochs: 1}
        search: {sampler: random}
        params:
          learning_rate: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
    """)
    store = tmp_path / "store"
    # the clock runs from the start (Keras loading included: seconds on a loaded 2-core machine). Ray takes
    # seconds more to start, and a trial it was asked for seconds to start in its worker: a longer
    # budget, and a trial's run may open up to five seconds after the deadline its searcher respected
    minutes, lag_ms = (0.5, 5_000) if engine == "ray" else (0.25, 1_000)
    proc = (run_cli if engine == "ray" else invoke_cli)("sweep", str(space), "--engine", engine, "--minutes",
                                                        str(minutes), "--store", str(store))
    # Rule: the time budget ends the run like a met budget: exit 0, the best exported, and it says so
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = " ".join(proc.stdout.split())
    assert f"Time budget spent ({minutes:g} min)" in said and "Re-run to continue" in said
    parents, runs = sweep_runs(mlflow_client(store), "timed", "timed")
    assert parents[0].info.status == "FINISHED"
    # Rule: some trials ran, far from the 500 allowed, and none is left running
    assert 1 <= len(runs) < 500
    assert all(r.info.status != "RUNNING" for r in runs)
    # Rule: no trial started after the deadline (counted from the parent run's start), but for the sweep's
    # first: it runs whatever the clock says (on a loaded machine Keras' import alone outlasted 15 s)
    deadline = parents[0].info.start_time + minutes * 60_000
    later = sorted(runs, key=lambda r: r.info.start_time)[1:]
    assert all(r.info.start_time <= deadline + lag_ms for r in later), [r.info.start_time - deadline for r in runs]
    assert (store / "exports" / "timed.yaml").exists()
