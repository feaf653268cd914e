"""Several objectives: the Pareto front is the result (status, export, plot, tags), on the engines that can."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kerasweep.search.errors import UserInputError
from kerasweep.search.results import SweepResult, TrialResult, TrialState
from tests.conftest import mlflow_client, run_cli, sweep_runs, write_space

SPACE = """
    name: pareto
    model: mlp
    data: iris
    objective:
      - {metric: val_accuracy, direction: maximize}
      - {metric: model_params, direction: minimize}
    budget: {trials: 6, epochs: 3}
    search: {sampler: random, seed: 2}
    params:
      units: {type: categorical, choices: [2, 4, 8, 16, 32, 64]}
      learning_rate: {type: float, low: 1.0e-2, high: 1.0e-1, log: true}
    fixed: {layers: 1}
"""


def _front(points: dict[int, tuple[float, float]]) -> set[int]:
    """Non-dominated trials for (maximize, minimize), computed independently of kerasweep."""
    return {n for n, (acc, size) in points.items()
            if not any(a >= acc and s <= size and (a > acc or s < size) for m, (a, s) in points.items() if m != n)}


def test_the_pareto_front_is_every_complete_trial_no_other_dominates() -> None:
    trials = tuple(TrialResult(n, TrialState.COMPLETE, v[0], values=v) for n, v in
                   enumerate([(0.9, 100.0), (0.8, 50.0), (0.7, 60.0), (0.9, 200.0), (0.95, 300.0)]))
    trials += (TrialResult(9, TrialState.PRUNED, 0.99), TrialResult(8, TrialState.FAILED))
    result = SweepResult("s", "optuna", "maximize", 10, trials, ("maximize", "minimize"))
    # Rule: 2 loses to 1 (worse on both), 3 to 0 (same accuracy, bigger); pruned and failed trials never count
    assert [t.number for t in result.pareto_front()] == [0, 1, 4]
    assert result.best.number == 4  # the first objective still names one best


def test_several_objectives_are_checked_and_refused_where_an_engine_cannot() -> None:
    from kerasweep.search.space import Space, SpaceProblems
    from kerasweep.search.sweep import make_config

    data = yaml.safe_load(SPACE.replace("\n    ", "\n"))
    space = Space.model_validate(data)
    assert space.multi_objective and [o.metric for o in space.all_objectives] == ["val_accuracy", "model_params"]
    assert space.objective.metric == "val_accuracy"
    # Rule: the first objective picks the best epoch, so it must be a metric training logs
    with pytest.raises(SpaceProblems) as swapped:  # a space built in Python is checked as a file is
        Space.model_validate({**data, "objective": data["objective"][::-1]})
    assert any(p.startswith("objective[0].metric:") and "picks each trial's best epoch" in p
               for p in swapped.value.problems)
    with pytest.raises(SpaceProblems) as unknown:
        Space.model_validate({**data, "objective": [data["objective"][0], {"metric": "size"}]})
    assert any(p.startswith("objective[1].metric:") and "model_params, model_bytes, latency_ms" in p
               for p in unknown.value.problems)
    # Rule: the keras-tuner engine refuses with one line naming the engines that can
    with pytest.raises(UserInputError, match=r"objective: several objectives run on engine optuna and ray"):
        make_config(space, engine="keras-tuner")


def _check_front(store: Path, name: str) -> None:
    """The exports, tags and plot of a finished two-objective sweep agree with the runs' own values."""
    client = mlflow_client(store)
    parents, runs = sweep_runs(client, "pareto", name)
    complete = [r for r in runs if r.data.tags["kerasweep.state"] == "complete"]
    points = {int(r.data.tags["kerasweep.trial"]): tuple(json.loads(r.data.tags["kerasweep.values"])) for r in complete}
    # Rule: each complete run holds both values: the model's size as logged, the accuracy at its best epoch
    for run in complete:
        values = points[int(run.data.tags["kerasweep.trial"])]
        assert values[1] == run.data.metrics["model_params"]
        assert values[0] == max(m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy"))
    front = _front(points)
    assert front and len(points) >= 3
    exported = {yaml.safe_load(p.read_text())["provenance"]["trial"] for p in (store / "exports").glob(f"{name}-trial-*.yaml")}
    # Rule: the export is exactly the front: every exported trial non-dominated, no front trial missing
    assert exported == front
    tagged = {int(r.data.tags["kerasweep.trial"]) for r in runs if r.data.tags.get("kerasweep.pareto") == "true"}
    assert tagged == front
    assert "plots/pareto_front.png" in {a.path for a in client.list_artifacts(parents[0].info.run_id, "plots")}


def test_a_two_objective_sweep_exports_exactly_its_pareto_front_on_optuna(tmp_path: Path) -> None:
    import os

    from kerasweep.search.cli import main
    from kerasweep.search.export import export_best
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    store = tmp_path / "store"
    run_sweep(make_config(load_space(write_space(tmp_path, SPACE)), store=store))
    export_best("pareto", store)
    _check_front(store, "pareto")
    status = CliRunner().invoke(main, ["status", "pareto", "--store", str(store)])
    # Rule: status lists the front, each trial with both objectives
    assert status.exit_code == 0 and "Pareto front of pareto (val_accuracy max, model_params min)" in status.output


@pytest.mark.slow  # a private Ray starts
def test_a_two_objective_sweep_exports_exactly_its_pareto_front_on_ray(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = run_cli("sweep", str(write_space(tmp_path, SPACE)), "--engine", "ray", "--name", "onray", "--store", str(store))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Pareto front:" in proc.stdout
    _check_front(store, "onray")
