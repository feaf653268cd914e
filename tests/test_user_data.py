"""`data: package.module:function`: a user's own loading code supplies the arrays, checked as files are."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.errors import UserInputError
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

    from search.space import load_space
    from search.sweep import make_config, run_sweep
    from trainers.fit import TrainSpec, load_data

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
    ("tests.user_data:wrong", "the function returned str; expected (x, y) or a mapping"),
])
def test_a_bad_data_function_is_bad_input_before_any_work(tmp_path: Path, data: str, said: str) -> None:
    from search.space import load_space
    from search.sweep import make_config

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

    from search.export import export_best, read_export
    from search.production import train_config
    from search.space import load_space
    from search.sweep import make_config, run_sweep

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
