"""Constraints at export: the best trial that fits a production budget (model size, latency, a metric)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kerasweep.search.constraints import Constraint, parse_where
from kerasweep.search.errors import UserInputError
from tests.conftest import write_space


def test_constraints_parse_and_bad_ones_name_the_rule() -> None:
    assert parse_where(["latency_ms < 5", "model_params<=2e5", " val_accuracy >= 0.9 "], "classification") == [
        Constraint("latency_ms", "<", 5.0), Constraint("model_params", "<=", 200000.0),
        Constraint("val_accuracy", ">=", 0.9)]
    # Rule: a malformed constraint says the expected form; an unknown metric lists the task's metrics
    with pytest.raises(UserInputError, match=r"--where: 'latency_ms ~ 5' is not a constraint; expected METRIC < NUMBER"):
        parse_where(["latency_ms ~ 5"], "classification")
    with pytest.raises(UserInputError, match=r"unknown metric 'val_mae'.*model_params, model_bytes, latency_ms, loss"):
        parse_where(["val_mae < 3"], "classification")
    assert Constraint("m", "<", 10).excess(15) == 0.5 and Constraint("m", ">", 10).holds(None) is False


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Four complete trials of an mlp on iris, two widths: 4 units (35 weights) and 64 (515)."""
    import os

    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    folder = tmp_path_factory.mktemp("fits")
    space = write_space(folder, """
        name: fits
        model: mlp
        data: iris
        budget: {trials: 4, epochs: 3}
        search: {sampler: random, pruner: none, seed: 1}
        params:
          units: {type: categorical, choices: [4, 64], default: 64}
          learning_rate: {type: float, low: 1.0e-2, high: 5.0e-2, log: true}
        fixed: {layers: 1}
    """)
    store = folder / "store"
    result = run_sweep(make_config(load_space(space), store=store))
    return {"store": store, "result": result}


def test_the_export_is_the_best_trial_that_meets_every_constraint(fitted: dict) -> None:
    from kerasweep.search.export import export_best

    result = fitted["result"]
    small = [t for t in result.ranked() if t.params["units"] == 4]
    assert small and len(small) < len(result.ranked()), "the sweep must hold both widths"
    path = export_best("fits", fitted["store"], where=["model_params < 100", "latency_ms < 1000"])[0]
    exported = yaml.safe_load(path.read_text())
    # Rule: the best trial among those that fit (4 units), not the best overall, with the constraints recorded
    assert exported["provenance"]["trial"] == small[0].number
    assert exported["params"]["units"] == 4
    assert exported["provenance"]["where"] == ["model_params < 100", "latency_ms < 1000"]
    # Rule: a training metric is read at the trial's best epoch; one every trial meets changes nothing
    path = export_best("fits", fitted["store"], where=["val_accuracy >= 0"])[0]
    assert yaml.safe_load(path.read_text())["provenance"]["trial"] == result.best.number


def test_no_trial_meeting_the_constraints_is_bad_input_naming_the_closest(fitted: dict) -> None:
    from kerasweep.search.cli import main

    small = [t for t in fitted["result"].ranked() if t.params["units"] == 4]
    answer = CliRunner().invoke(main, ["export", "fits", "--store", str(fitted["store"]), "--where", "model_params < 10"])
    # Rule: exit 2, one line naming the constraint and the closest trial with its value
    assert answer.exit_code == 2, answer.output
    said = " ".join(answer.output.split())
    assert "no complete trial of sweep 'fits' meets model_params < 10" in said
    assert "closest: trial" in said and "(model_params 35)" in said
    assert int(said.split("closest: trial ")[1].split()[0]) in {t.number for t in small}
    bad = CliRunner().invoke(main, ["export", "fits", "--store", str(fitted["store"]), "--where", "size < 3"])
    assert bad.exit_code == 2 and "--where: unknown metric 'size'" in " ".join(bad.output.split())
    assert not list((Path(fitted["store"]) / "exports").glob("*-2.yaml"))


def test_a_training_metric_is_read_at_the_best_epoch_of_the_runs_own_curve_when_the_trial_has_none() -> None:
    from kerasweep.search.constraints import measured
    from kerasweep.search.results import TrialResult, TrialState

    class Tracker:  # a fake: the trial run's logged curves
        def __init__(self) -> None:
            self.curves = {"val_accuracy": {1: 0.8, 2: 0.9, 3: 0.85}, "val_loss": {1: 0.5, 2: 0.3, 3: 0.4}}

        def latest_metrics(self, run_id: str) -> dict:
            return {"model_params": 100.0}

        def metric_history(self, run_id: str, key: str) -> dict:
            return self.curves.get(key, {})

    trial = TrialResult(0, TrialState.COMPLETE, 0.9, mlflow_run_id="r")  # no curve: a multi-objective Optuna trial
    # Rule: the best epoch comes from the run's curve of the first objective (epoch 2), not "not measured"
    assert measured(Tracker(), trial, {"val_loss", "model_params"}, True, "val_accuracy") == {
        "val_loss": 0.3, "model_params": 100.0}
