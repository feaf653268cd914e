"""`data: package.module:function`: a user's own loading code supplies the arrays, checked as files are."""

from __future__ import annotations

from pathlib import Path

import pytest

from kerasweep.search.errors import UserInputError
from tests.conftest import write_space

SPACE = """
    name: own
    model: mlp
    data: {data}
    budget: {{trials: 2, epochs: 2}}
    params:
      units: {{type: categorical, choices: [8, 16]}}
"""


def test_a_data_function_trains_and_its_names_come_back_with_the_model(tmp_path: Path) -> None:
    import os

    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep
    from kerasweep.trainers.fit import TrainSpec, load_data

    data = load_data(TrainSpec(model="mlp", data="tests.user_data:wine"))
    # Rule: the function's column names and text labels are kept, as a CSV's are
    assert data.features[:2] == ("alcohol", "malic_acid") and next(iter(data.classes)) == "cultivar-0"
    assert load_data(TrainSpec(model="mlp", data="tests.user_data:pairs")).x_train.shape[1] == 4
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    result = run_sweep(make_config(load_space(write_space(tmp_path, SPACE.format(data="tests.user_data:wine"))),
                                   store=tmp_path / "store"))
    # Rule: the sweep runs on them like on any file
    assert result.done == 2 and result.best is not None


@pytest.mark.parametrize(("data", "said"), [
    ("tests.user_data:gone", "tests.user_data:gone: cannot load the data function"),
    ("tests.nowhere:load", "No module named 'tests.nowhere'"),
    ("tests.user_data:wrong", "the function returned str; expected (x, y), a mapping"),
])
def test_a_bad_data_function_is_bad_input_before_any_work(tmp_path: Path, data: str, said: str) -> None:
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config

    store = tmp_path / "store"
    with pytest.raises(UserInputError, match="data: ") as caught:
        make_config(load_space(write_space(tmp_path, SPACE.format(data=data))), store=store)
    assert said in str(caught.value)
    assert not store.exists()


BUILDER = '''
import keras


def build(values, input_shape, n_outputs):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Dense(int(values["units"]), activation="relu"),
                             keras.layers.Dense(n_outputs, activation="softmax")])


def rows():
    from sklearn.datasets import load_iris

    bunch = load_iris()
    return bunch.data, bunch.target
'''


def test_an_export_of_a_users_module_trains_from_any_folder(tmp_path: Path, monkeypatch) -> None:
    import sys

    import yaml

    from kerasweep.search.export import export_best, read_export
    from kerasweep.search.production import train_config
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project, elsewhere, store = tmp_path / "project", tmp_path / "elsewhere", tmp_path / "store"
    project.mkdir()
    elsewhere.mkdir()
    (project / "kw_own_code.py").write_text(BUILDER)
    space_file = write_space(project, SPACE.replace("model: mlp", "model: kw_own_code:build")
                             .format(data="kw_own_code:rows").replace("trials: 2", "trials: 1"))
    monkeypatch.chdir(project)  # the user's project folder, as `make sweep` runs there
    monkeypatch.setattr(sys, "path", list(sys.path))  # the test's own additions are undone
    space = load_space(space_file)
    # Rule: the folder the user's module imports from is recorded with the space, and exported
    assert Path(space.code) == project.resolve()
    run_sweep(make_config(space, store=store))
    export = export_best("own", store)[0]
    assert Path(yaml.safe_load(export.read_text())["code"]) == project.resolve()

    monkeypatch.chdir(elsewhere)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != project.resolve()]
    sys.modules.pop("kw_own_code", None)
    # Rule: production training imports the same builder and data function from another folder
    result = train_config(export, store)
    assert result.best_value > 0
    sys.modules.pop("kw_own_code", None)

    moved = export.with_name("moved.yaml")
    moved.write_text(export.read_text().replace(str(project.resolve()), str(tmp_path / "gone")))
    # Rule: a code folder that moved is bad input naming the field and the fix
    with pytest.raises(UserInputError, match=r"moved.yaml: code: folder .*gone' does not exist; point it at"):
        read_export(moved)


def test_streamed_datasets_train_and_the_registered_model_answers_raw_rows(tmp_path: Path, monkeypatch) -> None:
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_wine

    from kerasweep.search.export import export_best
    from kerasweep.search.production import train_config
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep
    from tests.user_data import WINE_NAMES
    from kerasweep.trainers.fit import TrainSpec, load_data

    data = load_data(TrainSpec(model="mlp", data="tests.user_data:streamed"))
    # Rule: one pass over the streams learns what arrays give: classes by name, feature names, scaling
    assert data.streams is not None and data.classes == tuple(sorted(WINE_NAMES))
    assert data.features[0] == "alcohol" and data.input_shape == (13,)
    bunch = load_wine()
    train_rows = bunch.data[np.arange(len(bunch.data)) % 5 != 0]
    assert np.allclose(data.mean, train_rows.mean(axis=0), rtol=1e-4)  # fitted on the training stream only

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = tmp_path / "store"
    space = SPACE.format(data="tests.user_data:streamed").replace("epochs: 2", "epochs: 40") + "    fixed: {learning_rate: 0.01}\n"
    result = run_sweep(make_config(load_space(write_space(tmp_path, space)), store=store))
    assert result.done == 2 and result.best is not None
    production = train_config(export_best("own", store)[0], store)
    mlflow.set_tracking_uri(f"sqlite:///{(store / 'mlflow.db').resolve()}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow.get_tracking_uri())
    model = mlflow.pyfunc.load_model(f"models:/own/{production.version}")
    held = np.arange(len(bunch.data)) % 5 == 0
    answers = np.asarray(model.predict(pd.DataFrame(bunch.data[held], columns=bunch.feature_names)))
    # Rule: the registered model takes raw rows and answers with the stream's class names
    assert float(np.mean(answers == np.array(WINE_NAMES)[bunch.target[held]])) >= 0.9


def test_a_batched_regression_stream_trains_in_the_targets_units() -> None:
    from kerasweep.trainers.fit import TrainSpec, load_data, train

    spec = TrainSpec(model="mlp", data="tests.user_data:streamed_regression", task="regression", epochs=2,
                     monitor="val_mae", direction="minimize", params={"units": 8})
    data = load_data(spec)
    # Rule: batches are undone (kerasweep batches by the trial's batch_size); the target's scale is learnt
    assert data.input_shape == (10,) and 140 < float(data.y_mean[0]) < 165
    history = train(spec).history
    assert len(history["val_mae"]) == 2 and history["val_mae"][-1] < 200


@pytest.mark.parametrize(("data", "validation", "said"), [
    ("tests.user_data:streamed_empty", None, "a dataset is empty"),
    ("tests.user_data:streamed", "x.csv", "the function returns its own validation dataset; remove validation:"),
])
def test_streams_that_cannot_train_are_refused(data: str, validation: str | None, said: str) -> None:
    from kerasweep.trainers.data import DataError, load_arrays

    with pytest.raises(DataError, match=said):
        load_arrays(data, validation=validation)


def test_a_stream_of_float_class_labels_trains() -> None:
    from kerasweep.trainers.fit import TrainSpec, load_data, train

    spec = TrainSpec(model="mlp", data="tests.user_data:streamed_float_labels", task="binary", epochs=2,
                     params={"units": 8})
    # Rule: whole-number float labels are classes as integers are (0.0 and 1.0 here)
    assert load_data(spec).classes == (0.0, 1.0)
    assert len(train(spec).history["val_accuracy"]) == 2
