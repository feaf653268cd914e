"""The user's own task and data (issue 12): regression, binary and multi-label tasks, named target columns,
labels that do not fit the task refused with the fix, and production models that answer raw rows in the
user's own terms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kerasweep.search.errors import UserInputError
from tests.conftest import invoke_cli, mlflow_client, run_cli, write_space
from kerasweep.trainers.data import DataError, load_arrays


def _held_back(frame: pd.DataFrame, folder: Path, name: str, share: float = 0.2) -> tuple[Path, pd.DataFrame]:
    """Write all but a random `share` of the rows as the user's CSV; return it and the rows held back."""
    held = frame.sample(frac=share, random_state=1)
    path = folder / name
    frame.drop(held.index).to_csv(path, index=False)
    return path, held


def test_regression_on_a_csv_with_its_own_target_column_answers_raw_rows_in_its_units(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    import mlflow
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    bunch = load_diabetes(scaled=False, as_frame=True)
    frame = bunch.frame.rename(columns={"target": "progression"})
    _, held = _held_back(frame, tmp_path, "diabetes.csv")
    write_space(tmp_path, """
        name: progression
        model: mlp
        data: diabetes.csv
        task: regression
        target: progression
        budget: {trials: 2, epochs: 100}
        params:
          layers: {type: int, low: 0, high: 1, default: 1}
          units: {type: categorical, choices: [8], when: {layers: [1]}}
          l2: {type: categorical, choices: [1.0e-2], when: {layers: [1]}}
        search: {sampler: grid}  # both: the one-layer MLP and the linear model
        fixed: {learning_rate: 1.0e-2, dropout: 0.0, batch_size: 32, patience: 20}
        """)
    store = tmp_path / "store"
    sweep = invoke_cli("sweep", str(tmp_path / "space.yaml"), "--store", str(store))
    assert sweep.returncode == 0, sweep.stderr + sweep.stdout
    # Rule: a regression space defaults to val_mae, minimised, and logs mae and rmse on every trial
    assert "Best val_mae" in sweep.stdout
    export = store / "exports" / "progression.yaml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    trained = run_cli("train", str(export), "--store", str(store.resolve()), cwd=elsewhere)
    # Rule: the export holds the resolved data path: production training works from any folder
    assert trained.returncode == 0, trained.stderr + trained.stdout

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_client(store).tracking_uri)  # undone after the test
    mlflow.set_tracking_uri(mlflow_client(store).tracking_uri)
    model = mlflow.pyfunc.load_model("models:/progression/1")
    predicted = np.asarray(model.predict(held.drop(columns=["progression"]))).ravel()  # raw columns, by name
    linear = LinearRegression().fit(frame.drop(held.index).drop(columns=["progression"]), frame.drop(held.index)["progression"])
    linear_mae = float(np.abs(linear.predict(held.drop(columns=["progression"])) - held["progression"]).mean())
    mae = float(np.abs(predicted - held["progression"].to_numpy()).mean())
    # Rule: raw rows never seen in the sweep get predictions in the target's units, no worse than a linear
    # regression's: the space holds the linear model (layers: 0), which wins on validation (measured: MAE
    # 41.6 against 41.7; the one-layer MLP had 42.4)
    assert abs(predicted.mean() - held["progression"].mean()) < 40  # target units (mean about 150), not z-scores
    assert mae <= linear_mae, (mae, linear_mae)


def test_text_class_names_in_a_named_column_come_back_with_the_model(tmp_path: Path, monkeypatch) -> None:
    from sklearn.datasets import load_wine

    from kerasweep.search.export import export_best
    from kerasweep.search.production import train_config
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # this store's own tracking file, whatever ran before
    bunch = load_wine(as_frame=True)
    names = np.array(["barolo", "grignolino", "barbera"])
    frame = bunch.frame.assign(cultivar=names[bunch.target]).drop(columns=["target"])
    _, held = _held_back(frame, tmp_path, "wine.csv")
    space = write_space(tmp_path, """
        name: cultivars
        model: mlp
        data: wine.csv
        target: cultivar
        budget: {trials: 1, epochs: 40}
        params:
          learning_rate: {type: float, low: 1.0e-3, high: 3.0e-2, log: true, default: 1.0e-2}
        fixed: {units: 32, layers: 1, patience: 10}
        """)
    store = tmp_path / "store"
    run_sweep(make_config(load_space(space), store=store))
    result = train_config(export_best("cultivars", store)[0], store)
    client = mlflow_client(store)
    labels = json.loads(Path(client.download_artifacts(result.mlflow_run_id, "labels.json")).read_text())
    # Rule: the class names travel with the production run, in the model's output order
    assert labels == {"task": "classification", "classes": sorted(names.tolist())}
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
    mlflow.set_tracking_uri(client.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/cultivars/1")
    answers = np.asarray(model.predict(held.drop(columns=["cultivar"])))  # a DataFrame of raw feature columns
    # Rule: the registered model names raw rows never seen in the sweep, right at least 9 times in 10
    assert set(answers) <= set(names)
    assert float(np.mean(answers == held["cultivar"].to_numpy())) >= 0.9


@pytest.mark.parametrize("task, outputs, logged", [("binary", 1, {"auc", "val_auc", "accuracy"}),
                                                   ("multilabel", 3, {"auc", "val_accuracy"}),
                                                   ("regression", 2, {"mae", "rmse", "val_mae", "val_rmse"})])
def test_each_task_trains_with_its_head_loss_and_metrics(tmp_path: Path, task: str, outputs: int, logged: set) -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype("float32")
    y = {"binary": (x[:, 0] > 0).astype(int),
         "multilabel": (x[:, :3] > 0).astype(int),
         "regression": np.stack([x[:, 0] * 100 + 500, x[:, 1]], axis=1)}[task]
    np.savez(tmp_path / "d.npz", x=x, y=y)
    result = train(TrainSpec(model="mlp", data=str(tmp_path / "d.npz"), epochs=2, task=task,
                             monitor="val_loss", direction="minimize", params={"units": 8}))
    # Rule: the task decides the output head and the metrics logged
    assert result.model.output_shape == (None, outputs)
    assert logged <= set(result.history)
    last = result.network.layers[-1].activation.__name__
    assert last == {"binary": "sigmoid", "multilabel": "sigmoid", "regression": "linear"}[task]


@pytest.mark.parametrize("space, fragment", [
    ("data: diabetes\n", "looks like a regression target, not classes; set task: regression"),
    ("data: diabetes\ntask: regression\nobjective: {metric: val_accuracy}\n",
     "task regression does not log 'val_accuracy'; expected one of loss, mae, rmse, val_loss, val_mae, val_rmse"),
    ("data: wine\ntask: binary\n", "binary needs exactly 2 classes, found 3"),
    ("data: iris\ntask: sorting\n", "task: Input should be 'classification', 'binary', 'multilabel', 'regression' or 'forecast'"),
    ("data: d.csv\ntarget: cultivar\n", "no target column 'cultivar'"),
])
def test_data_that_does_not_fit_the_task_is_refused_with_the_fix(tmp_path: Path, space: str, fragment: str) -> None:
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config

    (tmp_path / "d.csv").write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n")
    path = write_space(tmp_path, "name: m\nmodel: mlp\n" + space + "params:\n  units: {type: int, low: 8, high: 16}\n")
    with pytest.raises(UserInputError) as caught:
        make_config(load_space(path), store=tmp_path / "store")
    assert fragment in str(caught.value), str(caught.value)
    assert not (tmp_path / "store").exists()


def test_one_hot_labels_are_classes(tmp_path: Path) -> None:
    labels = np.eye(3)[np.arange(30) % 3]
    np.savez(tmp_path / "d.npz", x=np.arange(60, dtype="float32").reshape(30, 2), y=labels)
    data = load_arrays(str(tmp_path / "d.npz"))
    # Rule: one-hot rows are read as the class of their single 1
    assert data.n_classes == 3 and set(data.y_train.tolist()) == {0, 1, 2}
    with pytest.raises(DataError, match="one-hot rows"):
        np.savez(tmp_path / "e.npz", x=np.zeros((30, 2)), y=np.ones((30, 3)))
        load_arrays(str(tmp_path / "e.npz"))


def test_a_user_head_that_does_not_fit_the_task_fails_the_trial_with_the_fix() -> None:
    import keras

    from kerasweep.trainers.fit import check_head

    softmax = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match="task regression needs linear"):
        check_head(softmax, "regression", 3)
    with pytest.raises(ValueError, match="the model has 3 outputs; task binary on this data needs 1"):
        check_head(softmax, "binary", 1)


def test_a_builders_own_compile_is_kept_and_a_value_it_ignores_is_refused(tmp_path: Path) -> None:
    import keras

    from kerasweep.trainers.fit import TrainSpec, train

    spec = TrainSpec(model="tests.compiled_model:uses_the_space", data="iris", epochs=1,
                     params={"learning_rate": 0.0123, "optimizer": "rmsprop"})
    result = train(spec)
    # Rule: a builder's compile() is respected: its optimizer, with the searched learning rate, trains the model
    assert isinstance(result.model.optimizer, keras.optimizers.RMSprop)
    assert float(np.asarray(result.model.optimizer.learning_rate)) == pytest.approx(0.0123)
    ignored = TrainSpec(model="tests.compiled_model:ignores_the_space", data="iris", epochs=1,
                        params={"learning_rate": 0.0123})
    # Rule: a searched value the builder's own optimizer does not carry is never trained, logged or exported
    with pytest.raises(ValueError, match=r"learning_rate=0.0123 from the space would not act"):
        train(ignored)


@pytest.mark.parametrize("params", [{"cell": "gru", "layers": 2, "bidirectional": True},
                                    {"cell": "lstm", "recurrent_dropout": 0.1}])
def test_the_rnn_builder_reads_sequences(tmp_path: Path, params: dict) -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6, 3)).astype("float32")  # (examples, steps, features)
    np.savez(tmp_path / "seq.npz", x=x, y=(x[:, :, 0].sum(axis=1) > 0).astype(int))
    result = train(TrainSpec(model="rnn", data=str(tmp_path / "seq.npz"), epochs=1, params={"units": 8, **params}))
    kinds = {layer.__class__.__name__ for layer in result.network.layers}
    # Rule: the rnn builder stacks the chosen cell (bidirectional when asked) over the steps
    assert ("Bidirectional" in kinds) == params.get("bidirectional", False)
    assert result.model.output_shape == (None, 2) and "accuracy" in result.history


def test_a_validation_file_replaces_the_split_and_must_match_the_data(tmp_path: Path) -> None:
    from sklearn.datasets import load_wine

    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config
    from kerasweep.search.trial import train_spec

    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    frame.iloc[:150].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[150:].to_csv(tmp_path / "val.csv", index=False)
    frame.iloc[150:].drop(columns=["proline"]).to_csv(tmp_path / "narrow.csv", index=False)
    text = "name: w\nmodel: mlp\ndata: train.csv\ntarget: cultivar\nvalidation: {}\nparams:\n  units: {{type: int, low: 8, high: 16}}\n"
    space = load_space(write_space(tmp_path, text.format("val.csv")))
    spec = train_spec(space, {})
    data = load_arrays(spec.data, spec.validation_split, spec.seed, spec.task, spec.target, spec.validation)
    # Rule: the user's validation file is the validation part, whole; the data file is the training part, whole
    assert len(data.x_val) == len(frame) - 150 and len(data.x_train) == 150
    assert Path(spec.validation).is_absolute()
    with pytest.raises(UserInputError, match=r"narrow.csv: lacks column\(s\) proline that .*train.csv has"):
        make_config(load_space(write_space(tmp_path, text.format("narrow.csv"))), store=tmp_path / "store")
    with pytest.raises(UserInputError, match=r"validation: 'gone.csv' is neither"):
        load_space(write_space(tmp_path, text.format("gone.csv")))


def test_a_value_the_builder_never_reads_fails_the_trial_naming_it() -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    spec = TrainSpec(model="tests.compiled_model:reads_width_only", data="iris", epochs=1,
                     params={"width": 8, "depth": 3, "learning_rate": 0.01})
    # Rule: a searched value that did not act is never logged as if it did (the trainer's own params excepted)
    with pytest.raises(ValueError, match="never read depth from its values.*it reads width"):
        train(spec)
    assert train(TrainSpec(model="tests.compiled_model:reads_width_only", data="iris", epochs=1,
                           params={"width": 8, "learning_rate": 0.01})).epochs_run == 1


def test_the_task_names_a_file_accepts_are_the_catalogs() -> None:
    from typing import get_args

    from kerasweep.search.space import TaskName
    from kerasweep.trainers import catalog

    # Rule: space and export files accept exactly the tasks the trainers implement
    assert get_args(TaskName) == tuple(catalog.TASKS)


def test_the_registered_model_takes_the_shapes_and_types_it_trained_on(tmp_path: Path, monkeypatch) -> None:
    import mlflow
    import pandas as pd

    from kerasweep.search.production import train_config

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 10, 1)).astype("float32")  # a window of 10 steps of one series
    np.savez(tmp_path / "seq.npz", x=x, y=(x[:, -3:, 0].sum(axis=1) > 0).astype(int))
    (tmp_path / "seq.yaml").write_text(f"model: rnn\ndata: {tmp_path / 'seq.npz'}\nepochs: 2\n"
                                       "params: {units: 4}\nprovenance: {space: seq}\n")
    store = tmp_path / "store"
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seq = train_config(tmp_path / "seq.yaml", store)
    # Rule: registering the model raises none of MLflow's warnings about the served model's type hints
    assert not [str(w.message) for w in caught if "Type hint" in str(w.message) or "type hints" in str(w.message)]
    frame = pd.DataFrame({"a": rng.integers(0, 100, 200), "b": rng.normal(size=200), "label": rng.integers(0, 2, 200)})
    frame.to_csv(tmp_path / "ints.csv", index=False)
    (tmp_path / "ints.yaml").write_text(f"model: mlp\ndata: {tmp_path / 'ints.csv'}\nepochs: 1\n"
                                        "params: {units: 4}\nprovenance: {space: ints}\n")
    ints = train_config(tmp_path / "ints.yaml", store)
    mlflow.set_tracking_uri(mlflow_client(store).tracking_uri)
    # Rule: a sequence model answers the (n, steps, features) arrays it trained on (no image channel added)
    assert len(mlflow.pyfunc.load_model(f"models:/seq/{seq.version}").predict(x[:7])) == 7
    rows = pd.read_csv(tmp_path / "ints.csv").drop(columns=["label"]).head(6)
    assert rows["a"].dtype == "int64"
    # Rule: a table's model takes the int64 columns of the very CSV it trained on
    assert len(mlflow.pyfunc.load_model(f"models:/ints/{ints.version}").predict(rows)) == 6
