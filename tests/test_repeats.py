"""`budget: {repeats: N}` (KerasTuner's executions_per_trial, issue 13): each trial trains N times from
other initial weights on the same split and reports the mean, on every engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from kerasweep.search.engines import ENGINES
from tests.conftest import mlflow_client, sweep_runs, write_space

SPACE = """
    name: again
    model: mlp
    data: iris
    budget: {trials: 2, epochs: 3, repeats: 3}
    search: {pruner: none}
    params:
      units: {type: categorical, choices: [4, 8]}
    fixed: {learning_rate: 0.01}
"""


@pytest.mark.parametrize("engine", [e if e != "ray" else pytest.param(e, marks=pytest.mark.slow) for e in ENGINES])
def test_each_trial_trains_repeats_times_and_reports_the_mean(engine: str, tmp_path: Path, monkeypatch) -> None:
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    text = SPACE if engine == "optuna" else SPACE.replace("    search: {pruner: none}\n", "")
    if engine == "keras-tuner":
        text += "    search: {sampler: random}\n"
    if engine == "ray":
        from tests.conftest import run_cli

        proc = run_cli("sweep", str(write_space(tmp_path, text)), "--engine", engine, "--store", str(tmp_path / "store"))
        assert proc.returncode == 0, proc.stderr + proc.stdout
    else:
        run_sweep(make_config(load_space(write_space(tmp_path, text)), store=tmp_path / "store", engine=engine))
    client = mlflow_client(tmp_path / "store")
    _, runs = sweep_runs(client, "again", "again")
    complete = [r for r in runs if r.data.tags["kerasweep.state"] == "complete"]
    assert complete
    for run in complete:
        repeats = client.get_metric_history(run.info.run_id, "repeat_value")
        values = [m.value for m in sorted(repeats, key=lambda m: m.step)]
        # Rule: three trainings, each logged by its number; the trial's value is their mean
        assert [m.step for m in sorted(repeats, key=lambda m: m.step)] == [1, 2, 3]
        assert float(run.data.tags["kerasweep.value"]) == pytest.approx(sum(values) / 3)
        # Rule: the first training is the reported one (its curve and checkpoint, what production reproduces)
        first_best = max(m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy"))
        assert values[0] == pytest.approx(first_best)
