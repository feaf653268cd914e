"""Every task end to end on every engine (issue 12): a sweep on the user's CSV with its own target column,
the MLflow shape, the export, production training from another folder, and the registered model
answering raw rows that were never in the sweep, in the task's own terms. The default engine runs in
`make test`; the others are slow (CI runs them with make test-slow). Issue 18: the default engine also runs
every task on Keras' JAX backend (sweep and production training in JAX processes, the registered model
loaded here on TensorFlow: an export of one backend trains and serves on another)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kerasweep.search.engines import ENGINES
from tests.conftest import mlflow_client, run_cli, sweep_runs, write_space
from kerasweep.trainers.backend import wanted

SPACE = """
    name: {task}
    model: mlp
    data: {task}.csv
    task: {task}
    target: {target}
    budget: {{trials: 2, epochs: 30}}
    params:
      units: {{type: categorical, choices: [16, 32]}}
    fixed: {{learning_rate: 0.03, layers: 1, patience: 15}}
"""


def _classification() -> tuple[pd.DataFrame, list[str]]:
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    names = np.array(["barolo", "grignolino", "barbera"])
    return bunch.frame.drop(columns=["target"]).assign(cultivar=names[bunch.target]), ["cultivar"]


def _binary() -> tuple[pd.DataFrame, list[str]]:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    return bunch.frame.drop(columns=["target"]).assign(diagnosis=np.array(["malignant", "benign"])[bunch.target]), \
        ["diagnosis"]


def _multilabel() -> tuple[pd.DataFrame, list[str]]:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.drop(columns=["target"])
    return frame.assign(is_setosa=(bunch.target == 0).astype(int), is_virginica=(bunch.target == 2).astype(int)), \
        ["is_setosa", "is_virginica"]


def _regression() -> tuple[pd.DataFrame, list[str]]:
    from sklearn.datasets import load_diabetes

    return load_diabetes(scaled=False, as_frame=True).frame.rename(columns={"target": "progression"}), ["progression"]


def _right_names(answers: object, held: pd.DataFrame, target: list[str]) -> float:
    answers = np.asarray(answers)
    assert set(answers) <= set(held[target[0]])  # the data's own names, never indices
    return float(np.mean(answers == held[target[0]].to_numpy()))


def _right_labels(answers: object, held: pd.DataFrame, target: list[str]) -> float:
    assert isinstance(answers, pd.DataFrame) and list(answers.columns) == target  # one 0/1 column per label, by name
    return float(np.mean((answers.to_numpy() == held[target].to_numpy()).all(axis=1)))


def _closeness(answers: object, held: pd.DataFrame, target: list[str]) -> float:
    """1 - MAE / MAE of always answering the training mean: > 0 is better than knowing nothing."""
    truth = held[target[0]].to_numpy()
    mae = float(np.abs(np.asarray(answers).ravel() - truth).mean())
    return 1.0 - mae / float(np.abs(truth - 152.0).mean())  # diabetes' target mean, in its units


TASKS: dict[str, tuple[Callable, Callable, float, str]] = {
    # task: (data, score of the registered model's answers on held-back raw rows, lowest score, a metric logged)
    "classification": (_classification, _right_names, 0.85, "val_accuracy"),
    "binary": (_binary, _right_names, 0.85, "val_auc"),
    "multilabel": (_multilabel, _right_labels, 0.7, "val_auc"),  # chance: 1 in 3
    "regression": (_regression, _closeness, 0.15, "val_rmse"),
}
CASES = [pytest.param(engine, task, "default", marks=[] if engine == "optuna" else [pytest.mark.slow])
         for engine in ENGINES for task in TASKS]
CASES += [pytest.param("optuna", task, "jax", marks=[pytest.mark.slow], id=f"optuna-{task}-jax") for task in TASKS]


@pytest.mark.parametrize(("engine", "task", "backend"), CASES)
def test_each_task_runs_end_to_end_on_each_engine(engine: str, task: str, backend: str, tmp_path: Path,
                                                  monkeypatch) -> None:
    import mlflow

    from kerasweep.search.export import export_best
    from kerasweep.search.production import train_config
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep

    make_data, score, lowest, metric = TASKS[task]
    frame, target = make_data()
    held = frame.sample(frac=0.2, random_state=1)
    frame.drop(held.index).to_csv(tmp_path / f"{task}.csv", index=False)
    text = SPACE.format(task=task, target=target[0] if len(target) == 1 else target)
    if engine == "keras-tuner":  # its default Hyperband trains two trials' worth only in short first rounds
        text += "    search: {sampler: random}\n"
    space = write_space(tmp_path, text)
    store = tmp_path / "store"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # "default": this process's backend (TensorFlow, or what `make test-jax` sets); another needs its own process
    other = {} if backend == "default" else {"KERAS_BACKEND": backend}
    backend = wanted() if backend == "default" else backend
    if engine == "ray" or other:  # a Ray sweep starts its own local cluster: its own process
        proc = run_cli("sweep", str(space), "--engine", engine, "--store", str(store), env=other)
        assert proc.returncode == 0, proc.stderr + proc.stdout
    else:
        run_sweep(make_config(load_space(space), store=store, engine=engine))

    client = mlflow_client(store)
    parents, runs = sweep_runs(client, task, task)
    # Rule: one closed parent run, a nested run per trial with the task's metrics
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert sum(r.data.tags["kerasweep.state"] in ("complete", "pruned") for r in runs) == 2
    assert all(metric in r.data.metrics for r in runs if r.data.tags["kerasweep.state"] == "complete")
    # Rule: each trained trial records the backend and precision it trained under
    assert {(r.data.tags.get("kerasweep.backend"), r.data.tags.get("kerasweep.precision")) for r in runs} == \
        {(backend, "float32")}

    export = export_best(task, store)[0]
    document = yaml.safe_load(export.read_text())
    assert document["task"] == task and document["provenance"]["backend"] == backend
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # Rule: production training works from any folder
    if not other:
        version = train_config(export, store.resolve()).version
    else:  # production trains on the sweep's backend, in a process of its own
        proc = run_cli("train", str(export), "--store", str(store.resolve()), env=other, cwd=elsewhere)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        version = max(int(v.version) for v in client.search_model_versions(f"name='{task}'"))
        production = client.get_model_version(task, str(version)).run_id
        assert client.get_run(production).data.tags["kerasweep.backend"] == backend

    mlflow.set_tracking_uri(client.tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{task}/{version}")
    answers = model.predict(held.drop(columns=target))  # a DataFrame of raw feature columns, by name
    # Rule: raw rows never in the sweep are answered in the task's own terms, and well
    assert score(answers, held, target) >= lowest


def test_a_sweep_whose_trials_were_all_pruned_says_so_at_export(tmp_path: Path, monkeypatch) -> None:
    from kerasweep.search.errors import UserInputError
    from kerasweep.search.export import export_best
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    frame, _ = _classification()
    frame.to_csv(tmp_path / "classification.csv", index=False)
    space = write_space(tmp_path, SPACE.format(task="classification", target="cultivar"))
    store = tmp_path / "store"
    run_sweep(make_config(load_space(space), store=store, engine="keras-tuner"))  # Hyperband: two short first-round trials
    # Rule: nothing trained to the end is named as such, with the fix, not as a sweep never run
    with pytest.raises(UserInputError, match="its 2 trials were all pruned; re-run it with a larger budget"):
        export_best("classification", store)
