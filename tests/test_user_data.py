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
