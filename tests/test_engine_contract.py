"""One contract for every engine: same MLflow shape, same states, same export, same bad-input handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kerasweep.search.engines import ENGINES as REGISTRY
from kerasweep.search.tracking import PARAMS_TAG, STATE_TAG
from tests.conftest import invoke_cli, mlflow_client, run_cli, sweep_runs, write_space

ENGINES = list(REGISTRY)  # every registered engine: the three shipped ones and the tests' random engine
TRIALS, EPOCHS = 5, 3
STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}
SPACE = f"""
    name: contract
    model: mlp
    data: wine
    budget: {{trials: {TRIALS}, epochs: {EPOCHS}}}
    params:
      learning_rate: {{type: float, low: 1.0e-3, high: 3.0e-2, log: true, default: 1.0e-2}}
      optimizer: {{type: categorical, choices: [adam, sgd], default: adam}}
      momentum: {{type: float, low: 0.5, high: 0.9, when: {{optimizer: sgd}}}}
      units: {{type: int, low: 8, high: 32, step: 8}}
    fixed: {{layers: 1}}
"""


@pytest.fixture(scope="module", params=ENGINES)
def swept(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp(f"contract-{request.param}")
    space = write_space(folder, SPACE, "contract.yaml")
    store = folder / "store"
    proc = _cli(request.param)("sweep", str(space), "--engine", request.param, "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return {"engine": request.param, "store": store, "space": space, "proc": proc}


def _cli(engine: str):
    """The CLI in this process, except for ray, whose sweep starts a local Ray of its own (a process)."""
    return run_cli if engine == "ray" else invoke_cli


def _runs(swept: dict) -> tuple[list, list]:
    return sweep_runs(mlflow_client(swept["store"]), "contract", "contract")


def test_budget_and_states(swept: dict) -> None:
    _, runs = _runs(swept)
    states = [r.data.tags[STATE_TAG] for r in runs]
    # Rule: every engine ends with exactly the budget of complete + pruned trials, none left running
    assert sum(s in ("complete", "pruned") for s in states) == TRIALS
    assert set(states) <= {"complete", "pruned", "failed"}
    assert "complete" in states
    numbers = sorted(int(r.data.tags["kerasweep.trial"]) for r in runs)
    assert numbers == list(range(len(runs)))  # trial numbers 0..n-1, each once


def test_mlflow_shape(swept: dict) -> None:
    client = mlflow_client(swept["store"])
    parents, runs = _runs(swept)
    # Rule: one parent per sweep, closed, with the space file, counts and plots
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.run_name == "contract" and parent.info.status == "FINISHED"
    assert parent.data.tags["kerasweep.engine"] == swept["engine"]
    assert parent.data.metrics["trials_complete"] + parent.data.metrics["trials_pruned"] == TRIALS
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"space", "plots"} <= artifacts
    for run in runs:
        state = run.data.tags[STATE_TAG]
        values = json.loads(run.data.tags[PARAMS_TAG])
        # Rule: nested under the parent, named trial-<n>, status follows the state
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.run_name == f"trial-{run.data.tags['kerasweep.trial']}"
        assert run.info.status == STATUS[state]
        # Rule: every resolved param logged (fixed ones too); inactive conditionals absent
        assert {k: str(v) for k, v in values.items()} == run.data.params
        assert values["layers"] == 1
        assert ("momentum" in values) == (values["optimizer"] == "sgd")
        # Rule: per-epoch metrics at step = epoch (1-based), no step twice
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert steps == list(range(1, len(steps) + 1)) and 1 <= len(steps) <= EPOCHS
        if state == "complete":
            # Rule: a complete trial's model cost is logged on every engine: its parameter count (the mlp
            # on wine: 13 inputs -> units -> 3 classes), its saved file's bytes and one row's prediction time
            metrics, units = run.data.metrics, values["units"]
            assert metrics["model_params"] == (13 * units + units) + (units * 3 + 3), metrics
            assert metrics["model_bytes"] > 1000 and 0 < metrics["latency_ms"] < 1000
        has_checkpoint = "checkpoint" in {a.path for a in client.list_artifacts(run.info.run_id)}
        # Rule: completed trials, and only they, carry checkpoint/model.keras
        assert has_checkpoint == (state == "complete")


def test_the_engines_trial_record_is_what_mlflow_holds(swept: dict) -> None:
    """The optuna engine reads its trials from the study (what its workers share), the others from
    MLflow: whichever the source, a user sees the same trials (status, export and plots read them)."""
    from kerasweep.search.engines import get_engine
    from kerasweep.search.lifecycle import results_from_mlflow
    from kerasweep.search.sweep import load_config

    config = load_config("contract", swept["store"])
    own, logged = get_engine(swept["engine"]).results(config), results_from_mlflow(config)

    def seen(result) -> list[tuple]:
        return [(t.number, t.state, t.mlflow_run_id, t.params, t.epochs, t.error, t.intermediate,
                 None if t.value is None else round(t.value, 6)) for t in result.trials]

    # Rule: the same trials, states, run ids, values, params and curves, from either record
    assert seen(own) == seen(logged)
    assert (own.budget, own.direction, own.best.number) == (logged.budget, logged.direction, logged.best.number)


def test_checkpoint_scores_the_logged_value(swept: dict) -> None:
    import keras

    from kerasweep.trainers.data import load_arrays

    client = mlflow_client(swept["store"])
    _, runs = _runs(swept)
    data = load_arrays("wine", 0.2, 0)
    for run in [r for r in runs if r.data.tags[STATE_TAG] == "complete"]:
        model = keras.models.load_model(client.download_artifacts(run.info.run_id, "checkpoint/model.keras"))
        _, accuracy = model.evaluate(data.x_val, data.y_val, verbose=0)
        # Rule: the checkpoint is the best epoch: it scores the trial's value
        assert accuracy == pytest.approx(float(run.data.tags["kerasweep.value"]), abs=1e-6)


def test_export_and_status(swept: dict) -> None:
    store = swept["store"]
    proc = invoke_cli("export", "contract", "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    document = yaml.safe_load((store / "exports" / "contract.yaml").read_text())
    _, runs = _runs(swept)
    complete = [r for r in runs if r.data.tags[STATE_TAG] == "complete"]
    best_value = max(float(r.data.tags["kerasweep.value"]) for r in complete)
    # Rule: export picks a best completed trial (ties are common on small data) and writes its typed values
    tied = {r.info.run_id: r for r in complete if float(r.data.tags["kerasweep.value"]) == best_value}
    assert document["provenance"]["mlflow_run_id"] in tied
    best = tied[document["provenance"]["mlflow_run_id"]]
    assert document["provenance"]["engine"] == swept["engine"]
    assert document["params"] == json.loads(best.data.tags[PARAMS_TAG])
    status = invoke_cli("status", "contract", "--store", str(store))
    row = next(line for line in status.stdout.splitlines() if line.startswith("│ contract"))
    # Rule: status shows the same counts for every engine
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[:3] == ["contract", swept["engine"], str(TRIALS)]
    assert int(cells[3]) == len(complete)


def test_rerun_of_a_finished_sweep_trains_nothing(swept: dict) -> None:
    _, before = _runs(swept)
    proc = _cli(swept["engine"])("sweep", str(swept["space"]), "--engine", swept["engine"], "--store",
                                 str(swept["store"]))
    # Rule: re-running a sweep that met its budget exits 0 and adds no trial, for every engine
    assert proc.returncode == 0, proc.stderr
    assert "already met its budget" in proc.stdout
    parents, after = _runs(swept)
    assert len(after) == len(before) and len(parents) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_input_is_rejected_before_any_work(engine: str, tmp_path: Path) -> None:
    space = write_space(tmp_path, SPACE.replace("low: 1.0e-3", "low: -1.0"), "bad.yaml")
    store = tmp_path / "store"
    proc = invoke_cli("sweep", str(space), "--engine", engine, "--store", str(store))
    # Rule: every engine rejects a bad space with exit 2, one line naming the field, nothing written
    assert proc.returncode == 2
    assert "params.learning_rate.low: must be > 0 when log: true" in proc.stderr
    assert not store.exists()


@pytest.mark.slow  # three sweeps, about a minute and a half; CI runs it with make test-slow
@pytest.mark.parametrize("engine", ENGINES)
def test_failed_trials_do_not_use_up_the_budget(engine: str, tmp_path: Path) -> None:
    space = write_space(tmp_path, """
        name: oomy
        model: tests.oom_model:build
        data: iris
        budget: {trials: 3, epochs: 1}
        params:
          size: {type: int, low: 1, high: 16, default: 16}
          learning_rate: {type: float, low: 1.0e-3, high: 1.0e-1, log: true, default: 1.0e-2}
    """)
    store = tmp_path / "store"
    proc = run_cli("sweep", str(space), "--engine", engine, "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    _, runs = sweep_runs(mlflow_client(store), "oomy", "oomy")
    states = [r.data.tags[STATE_TAG] for r in runs]
    # Rule: the first trial (size: 16, the default) runs out of memory and fails; the sweep still meets its budget
    assert "failed" in states
    assert sum(s in ("complete", "pruned") for s in states) == 3, states
