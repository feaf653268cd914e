"""`sampler: grid`: every config of the space once, on the engines that run Optuna's samplers."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import invoke_cli, mlflow_client, run_cli, sweep_runs, write_space

SPACE = """
    name: grid
    model: mlp
    data: iris
    budget: {trials: 50, epochs: 1}
    search: {sampler: grid, pruner: none}
    params:
      units: {type: int, low: 4, high: 8, step: 4}
      optimizer: {type: categorical, choices: [adam, sgd]}
    fixed: {layers: 1, learning_rate: 0.05}
"""


@pytest.mark.parametrize("engine", ["optuna", pytest.param("ray", marks=pytest.mark.slow)])
def test_a_grid_runs_each_config_once_and_that_is_the_budget(tmp_path: Path, engine: str) -> None:
    store = tmp_path / "store"
    proc = (run_cli if engine == "ray" else invoke_cli)("sweep", str(write_space(tmp_path, SPACE)), "--engine", engine,
                                                        "--store", str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Rule: a grid smaller than the budget becomes the budget, and the sweep says so
    assert "The grid holds 4 configs" in " ".join(proc.stdout.split())
    _, runs = sweep_runs(mlflow_client(store), "grid", "grid")
    configs = sorted((r.data.params["units"], r.data.params["optimizer"]) for r in runs)
    # Rule: every combination exactly once
    assert configs == [("4", "adam"), ("4", "sgd"), ("8", "adam"), ("8", "sgd")]


def test_a_grid_refused_where_it_cannot_run(tmp_path: Path) -> None:
    from kerasweep.search.cli import main

    store = tmp_path / "store"
    loose = write_space(tmp_path, SPACE.replace("units: {type: int, low: 4, high: 8, step: 4}",
                                                "dropout: {type: float, low: 0.0, high: 0.5}"), "loose.yaml")
    answer = CliRunner().invoke(main, ["sweep", str(loose), "--store", str(store)])
    # Rule: a float range without a step: exit 2, one line naming it; nothing written
    assert answer.exit_code == 2 and "params.dropout: sampler grid needs a step for a float range" in answer.output
    answer = CliRunner().invoke(main, ["sweep", str(write_space(tmp_path, SPACE)), "--engine", "keras-tuner",
                                       "--store", str(store)])
    # Rule: an engine without a grid says which samplers it runs
    assert answer.exit_code == 2 and "'grid' does not run on engine 'keras-tuner'" in " ".join(answer.output.split())
    assert not store.exists()
