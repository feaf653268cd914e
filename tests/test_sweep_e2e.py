"""A real sweep end to end: CLI -> Optuna (SQLite) -> Keras -> MLflow (SQLite) -> export, then resume."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from kerasweep.search.tracking import STATE_TAG
from tests.conftest import (
    EPOCHS,
    ROOT,
    TRIALS,
    invoke_cli,
    mlflow_client,
    optuna_trials,
    run_cli,
    sweep_runs,
    write_space,
)

OPTUNA_TO_STATE = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
STATE_TO_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}


def test_optuna_holds_exactly_the_budget(swept: dict) -> None:
    trials = optuna_trials(swept["store"], "tiny")
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    # Rule: the budget counts complete + pruned trials, and no trial is left running
    assert len(done) == TRIALS
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert len({t.number for t in trials}) == len(trials)


def test_first_trial_uses_the_space_defaults(swept: dict) -> None:
    first = optuna_trials(swept["store"], "tiny")[0]
    # Rule: a new sweep starts from the space's declared defaults (a known-good first trial)
    assert first.params["learning_rate"] == pytest.approx(3.0e-3)
    assert first.params["optimizer"] == "adam"
    assert "momentum" not in first.params  # inactive conditional: not sampled


def test_mlflow_has_one_parent_and_a_nested_run_per_trial(swept: dict) -> None:
    client = mlflow_client(swept["store"])
    parents, trial_runs = sweep_runs(client, "cnn", "tiny")
    trials = optuna_trials(swept["store"], "tiny")
    # Rule: one parent run per sweep, named after it, closed at the end with counts and best
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.run_name == "tiny" and parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_complete"] + parent.data.metrics["trials_pruned"] == TRIALS
    assert "kerasweep.best_trial" in parent.data.tags
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "space")] == ["space/cnn.yaml"]
    # Rule: one nested run per Optuna trial, linked to the parent, named trial-<n>
    assert len(trial_runs) == len(trials)
    by_number = {int(r.data.tags["kerasweep.trial"]): r for r in trial_runs}
    assert set(by_number) == {t.number for t in trials}
    for trial in trials:
        run = by_number[trial.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.run_name == f"trial-{trial.number}"
        state = OPTUNA_TO_STATE[trial.state.name]
        # Rule: the state tag matches Optuna, and the run status follows the state
        assert run.data.tags[STATE_TAG] == state
        assert run.info.status == STATE_TO_STATUS[state]
        # Rule: every sampled param is logged; inactive conditionals are not
        for name, value in trial.params.items():
            assert run.data.params[name] == str(value)
        assert ("momentum" in run.data.params) == (trial.params.get("optimizer") == "sgd")
        assert run.data.params["blocks"] == "2"  # fixed values are logged too


def test_per_epoch_metric_history(swept: dict) -> None:
    client = mlflow_client(swept["store"])
    _, trial_runs = sweep_runs(client, "cnn", "tiny")
    trials = {t.number: t for t in optuna_trials(swept["store"], "tiny")}
    for run in trial_runs:
        trial = trials[int(run.data.tags["kerasweep.trial"])]
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        steps = [m.step for m in history]
        # Rule: one point per trained epoch, step = epoch (1-based), matching what Optuna saw
        assert steps == list(range(1, len(steps) + 1))
        assert steps == sorted(trial.intermediate_values)
        for m in history:
            assert m.value == pytest.approx(trial.intermediate_values[m.step])
        if run.data.tags[STATE_TAG] == "pruned":
            assert len(steps) < EPOCHS  # pruned trials were stopped early


def test_checkpoints_load_and_score_what_was_logged(swept: dict) -> None:
    import keras

    from kerasweep.trainers.data import load_arrays

    client = mlflow_client(swept["store"])
    _, trial_runs = sweep_runs(client, "cnn", "tiny")
    data = load_arrays("digits", 0.2, 0)
    complete = [r for r in trial_runs if r.data.tags[STATE_TAG] == "complete"]
    assert complete
    # Rule: once MLflow holds the checkpoints, the store keeps no copies (pruned trials' included)
    assert not list((swept["store"] / "checkpoints" / "tiny").rglob("*.keras"))
    for run in complete:
        # Rule: every completed trial has its best-epoch checkpoint, and it scores the logged best value
        path = client.download_artifacts(run.info.run_id, "checkpoint/model.keras")
        model = keras.models.load_model(path)
        _, accuracy = model.evaluate(data.x_val, data.y_val, verbose=0)
        best_logged = max(m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy"))
        assert accuracy == pytest.approx(best_logged, abs=1e-6)
        assert float(run.data.tags["kerasweep.value"]) == pytest.approx(best_logged, rel=1e-5)
    for run in trial_runs:
        if run.data.tags[STATE_TAG] != "complete":
            assert not [a for a in client.list_artifacts(run.info.run_id) if a.path == "checkpoint"]


def test_export_round_trips(swept: dict) -> None:
    from kerasweep.search.export import load_export

    store = swept["store"]
    exported = store / "exports" / "tiny.yaml"
    # Rule: the sweep exports its best trial at the end
    assert exported.exists()
    document = yaml.safe_load(exported.read_text())
    trials = [t for t in optuna_trials(store, "tiny") if t.state.name == "COMPLETE"]
    best = max(trials, key=lambda t: t.value)
    assert document["provenance"]["trial"] == best.number
    assert document["provenance"]["objective"]["value"] == pytest.approx(best.value)
    spec = load_export(exported)
    # Rule: every sampled and fixed value is in the export, exactly
    assert {k: spec.params[k] for k in best.params} == best.params
    assert spec.params["blocks"] == 2 and spec.params["dense_units"] == 64
    assert (spec.model, spec.data, spec.epochs, spec.seed) == ("cnn", "digits", EPOCHS, 0)

    proc = invoke_cli("export", "tiny", "--top", "2", "--output", str(store / "x" / "best.yaml"), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    assert (store / "x" / "best.yaml").exists() and (store / "x" / "best-2.yaml").exists()


def test_status_lists_counts_and_best(swept: dict) -> None:
    store = swept["store"]
    proc = invoke_cli("status", "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    trials = optuna_trials(store, "tiny")
    complete = sum(t.state.name == "COMPLETE" for t in trials)
    row = next(line for line in proc.stdout.splitlines() if "tiny" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    # Rule: status shows the sweep with its counts per state and the best value
    assert cells[:4] == ["tiny", "optuna", str(TRIALS), str(complete)]
    best = max(t.value for t in trials if t.state.name == "COMPLETE")
    assert f"{best:.4f}" in row


def test_rerun_resumes_and_only_adds_the_remaining_trials(swept: dict) -> None:
    store = swept["store"]
    before = optuna_trials(store, "tiny")
    proc = invoke_cli("sweep", "cnn", "--trials", str(TRIALS + 2), "--epochs", str(EPOCHS), "--name", "tiny",
                      "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    # Rule: the same command resumes the sweep and says so
    assert "Resuming sweep tiny" in " ".join(proc.stdout.split())
    after = optuna_trials(store, "tiny")
    done = [t for t in after if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == TRIALS + 2
    assert [t.number for t in after[: len(before)]] == [t.number for t in before]
    parents, trial_runs = sweep_runs(mlflow_client(store), "cnn", "tiny")
    # Rule: the parent run is reused, never a second one
    assert len(parents) == 1 and len(trial_runs) == len(after)

    again = invoke_cli("sweep", "cnn", "--trials", str(TRIALS + 2), "--epochs", str(EPOCHS), "--name", "tiny",
                       "--store", str(store))
    # Rule: a sweep that met its budget prints its best and exits 0 without training
    assert again.returncode == 0
    assert "already met its budget" in again.stdout
    assert len(optuna_trials(store, "tiny")) == len(after)


def test_pruning_stops_hopeless_trials(tmp_path: Path) -> None:
    # A space where half the learning rates cannot learn: the median pruner must stop those early.
    space = write_space(tmp_path, """
        name: hopeless
        model: mlp
        data: digits
        budget: {trials: 8, epochs: 5}
        search: {sampler: random, pruner: median, seed: 3}
        params:
          learning_rate: {type: categorical, choices: [0.01, 1.0e-7], default: 0.01}
          units: {type: categorical, choices: [32, 64], default: 64}
        fixed: {optimizer: adam, patience: 10}
    """)
    store = tmp_path / "store"
    proc = invoke_cli("sweep", str(space), "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    trials = optuna_trials(store, "hopeless")
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    # Rule: weak trials are stopped before their last epoch, and only weak ones
    assert pruned, [(t.params, t.state.name) for t in trials]
    assert all(t.params["learning_rate"] == 1.0e-7 for t in pruned)
    assert all(max(t.intermediate_values) < 5 for t in pruned)
    good = [t for t in trials if t.params["learning_rate"] == 0.01]
    assert all(t.state.name == "COMPLETE" for t in good)
    assert not math.isnan(np.mean([t.value for t in good]))


def test_train_from_export_registers_a_model_that_scores_what_was_logged(swept: dict, monkeypatch) -> None:
    import mlflow

    from kerasweep.search.export import load_export
    from kerasweep.trainers.data import load_arrays

    store = swept["store"]
    exported = store / "exports" / "tiny.yaml"
    proc = run_cli("train", str(exported), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    model_path = store / "models" / "tiny.keras"
    # Rule: make train writes the model file to the path it prints
    assert model_path.exists() and "tiny.keras" in proc.stdout
    assert "models:/cnn/1" in proc.stdout

    client = mlflow_client(store)
    production = client.get_experiment_by_name("cnn-production")
    runs = client.search_runs([production.experiment_id])
    source = yaml.safe_load(exported.read_text())["provenance"]
    # Rule: one production run, linked to the trial it came from
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["kerasweep.source_run_id"] == source["mlflow_run_id"]
    logged_best = max(m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy"))

    # Rule: the registered model (models:/<space>/<version>) answers raw validation images with class names
    # (digits' are 0-9), as well as logged
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)  # set_tracking_uri sets it too: undone after
    mlflow.set_tracking_uri(client.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/cnn/1")
    assert model.metadata.get_input_schema() is not None  # a signature, inferred from the logged raw input example
    spec = load_export(exported)
    data = load_arrays(spec.data, spec.validation_split, spec.seed)
    answers = np.asarray(model.predict(data.x_val))
    accuracy = float(np.mean(answers == np.asarray(data.classes)[data.y_val]))
    assert accuracy == pytest.approx(logged_best, abs=1e-6)
    # Rule: raw images as a user has them (scikit-learn's digits: 0-16 floats, no channel axis) answer as the
    # README shows, class names included
    from sklearn.datasets import load_digits

    digits = load_digits()
    raw = np.asarray(model.predict(digits.images[:200].astype("float32")[..., None]))
    assert float(np.mean(raw == digits.target[:200])) >= logged_best - 0.15  # rows from both splits
    # Rule: training from an export reproduces the trial (same config and seed; observed difference 0.0)
    assert accuracy == pytest.approx(source["objective"]["value"], abs=0.03)

    again = invoke_cli("train", str(exported), "--epochs", "1", "--store", str(store))
    # Rule: each training registers a new version
    assert again.returncode == 0 and "models:/cnn/2" in again.stdout


def test_readme_example_uses_the_export_without_kerasweep(swept: dict) -> None:
    import keras

    readme = (ROOT / "docs" / "results.md").read_text()
    snippet = readme.split("<!-- export-example -->")[1].split("```python")[1].split("```")[0]
    code_lines = [line for line in snippet.strip().splitlines() if line.strip() and not line.startswith("#")]
    # Rule: the docs promise a five-line example
    assert len(code_lines) == 5, code_lines
    from kerasweep.trainers.data import load_arrays

    data = load_arrays("digits", 0.2, 0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    namespace = {"model": model, "x": data.x_train, "y": data.y_train}
    cwd = Path.cwd()
    try:
        os.chdir(swept["store"].parent)
        snippet = snippet.replace("runs/exports/cnn.yaml", str(swept["store"] / "exports" / "tiny.yaml"))
        exec(compile(snippet, "docs/results.md", "exec"), namespace)  # noqa: S102 - the docs' own example
    finally:
        os.chdir(cwd)
    # Rule: plain Keras trains with the exported optimizer, learning rate, batch size and epochs
    assert len(namespace["history"].history["loss"]) == EPOCHS
    assert model.optimizer.__class__.__name__.lower() == yaml.safe_load(
        (swept["store"] / "exports" / "tiny.yaml").read_text())["params"]["optimizer"]


def test_ui_serves_the_sweep_on_localhost(swept: dict) -> None:
    import json
    import urllib.request

    from tests.conftest import free_port, serving

    port = free_port()
    kerasweep = str(Path(sys.executable).with_name("kerasweep"))
    with serving([kerasweep, "ui", "--port", str(port), "--store", str(swept["store"])], port) as url:
        request = urllib.request.Request(
            f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=cnn", method="GET")
        experiment = json.load(urllib.request.urlopen(request))["experiment"]
        body = json.dumps({"experiment_ids": [experiment["experiment_id"]], "max_results": 100}).encode()
        search = urllib.request.Request(f"{url}/api/2.0/mlflow/runs/search", data=body,
                                        headers={"Content-Type": "application/json"})
        runs = json.load(urllib.request.urlopen(search))["runs"]
    names = {r["info"]["run_name"] for r in runs}
    # Rule: `kerasweep ui` serves the store's runs: the sweep's parent and its trials
    assert "tiny" in names and "trial-0" in names


@pytest.mark.slow  # about 40 s: a real `mlflow server` process; CI runs it in `make test-slow`
def test_sweep_logs_to_a_real_mlflow_server(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from tests.conftest import free_port, mlflow_server

    port = free_port()
    with mlflow_server(tmp_path / "server.db", tmp_path / "server-artifacts", port) as url:
        proc = run_cli("sweep", "mlp", "--trials", "3", "--epochs", "2", "--store", str(tmp_path / "store"),
                       env={"MLFLOW_TRACKING_URI": url})
        assert proc.returncode == 0, proc.stderr + proc.stdout
        client = MlflowClient(tracking_uri=url)
        parents, trial_runs = sweep_runs(client, "mlp", "mlp")
        # Rule: with MLFLOW_TRACKING_URI set, runs go to that server, in the same shape
        assert len(parents) == 1 and len(trial_runs) >= 3
        assert not (tmp_path / "store" / "mlflow.db").exists()
        complete = [r for r in trial_runs if r.data.tags[STATE_TAG] == "complete"]
        path = client.download_artifacts(complete[0].info.run_id, "checkpoint/model.keras", str(tmp_path))
        assert Path(path).stat().st_size > 0


@pytest.mark.slow  # about a minute: a real `mlflow server`, stopped mid-sweep and started again
def test_an_mlflow_server_gone_mid_sweep_is_one_line_and_the_rerun_leaves_nothing_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server down longer than the client's retries: 260 lines, exit 1, runs RUNNING."""
    import optuna
    from mlflow.tracking import MlflowClient

    from tests.conftest import free_port, mlflow_server, read_only_url, start_cli, wait_for, wait_or_kill, write_space

    port, store = free_port(), tmp_path / "store"
    space = write_space(tmp_path, """
        name: gone
        model: mlp
        data: iris
        budget: {trials: 2, epochs: 60}
        search: {sampler: random, pruner: none}
        params:
          learning_rate: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
        fixed: {batch_size: 1, patience: 100}
    """)  # 150 steps an epoch: a trial trains for about 20 s
    args = ("sweep", str(space), "--store", str(store))
    server = (tmp_path / "server.db", tmp_path / "server-artifacts", port)
    for name, value in {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
                        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}.items():
        monkeypatch.setenv(name, value)  # the client's retries, short for the test
    with mlflow_server(*server) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        proc = start_cli(*args)

        def training() -> bool:
            try:
                study = optuna.load_study(study_name="gone", storage=read_only_url(store / "optuna.db"))
            except Exception:  # noqa: BLE001 - not created yet
                return False
            return any(t.intermediate_values for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)))

        wait_for(training, proc, 240, 0.2, "a trial training")
    out, err = wait_or_kill(proc, 300)  # the server is gone now
    lines = [line for line in err.splitlines() if line.strip()]
    # Rule: one line saying what happened and what to do, exit 1, no traceback
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err and len(lines) <= 2, err
    assert "the MLflow server" in err and "stopped answering" in err and "re-run the same command" in err
    study = optuna.load_study(study_name="gone", storage=f"sqlite:///{store / 'optuna.db'}")
    # Rule: the running trial is failed in Optuna, not left RUNNING
    assert "RUNNING" not in [t.state.name for t in study.get_trials()]

    with mlflow_server(*server) as url:
        rerun = run_cli(*args, env={"MLFLOW_TRACKING_URI": url})
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        client = MlflowClient(tracking_uri=url)
        parents, runs = sweep_runs(client, "gone", "gone")
        # Rule: once the server is back and the command re-run, the budget is met and nothing is RUNNING
        assert [p.info.status for p in parents] == ["FINISHED"]
        assert not [r for r in runs if r.info.status == "RUNNING"], [(r.data.tags, r.info.status) for r in runs]
        assert sum(r.data.tags.get(STATE_TAG) == "complete" for r in runs) == 2
