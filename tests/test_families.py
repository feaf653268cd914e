"""Per-layer families in a space file (issue 13): `units_{i}: {..., per: layers}` writes out one param per
layer, each existing only for the numbers of layers that have it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kerasweep.search.errors import UserInputError
from tests.conftest import write_space

SPACE = """
    name: fam
    model: mlp
    data: iris
    params:
      layers: {{type: int, low: 1, high: 4}}
      {family}
"""


def test_a_family_writes_out_one_param_per_layer_with_its_condition(tmp_path: Path) -> None:
    from kerasweep.search.space import load_space

    family = "units_{i}: {type: int, low: 8, high: 64, step: 8, per: layers, start: 2}"
    space = load_space(write_space(tmp_path, SPACE.format(family=family)))
    # Rule: units_2 .. units_4 (layers' high), each when layers has that layer; the rest of the param as written
    assert list(space.params) == ["layers", "units_2", "units_3", "units_4"]
    assert [space.params[f"units_{n}"].when for n in (2, 3, 4)] == [{"layers": [2, 3, 4]}, {"layers": [3, 4]},
                                                                   {"layers": [4]}]
    assert space.params["units_3"].high == 64 and space.params["units_3"].step == 8


def test_a_family_runs_on_optuna(tmp_path: Path, monkeypatch) -> None:
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep
    from tests.conftest import mlflow_client, sweep_runs

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    family = "units_{i}: {type: int, low: 8, high: 32, step: 8, per: layers, start: 2}"
    text = SPACE.format(family=family) + "    budget: {trials: 4, epochs: 1}\n    search: {sampler: random, seed: 3}\n"
    run_sweep(make_config(load_space(write_space(tmp_path, text)), store=tmp_path / "store"))
    _, runs = sweep_runs(mlflow_client(tmp_path / "store"), "fam", "fam")
    # Rule: each trial logs exactly the members its number of layers has
    for run in runs:
        layers = int(run.data.params["layers"])
        assert {k for k in run.data.params if k.startswith("units_")} == {f"units_{n}" for n in range(2, layers + 1)}


@pytest.mark.parametrize(("family", "said"), [
    ("units_{i}: {type: int, low: 8, high: 64}", "params.units_{i}: a name with {i} is a family, one param per layer; add per:"),
    ("units_{i}: {type: int, low: 8, high: 64, per: depth}", "params.units_{i}.per: 'depth' must be an int param declared before"),
    ("units_{i}: {type: int, low: 8, high: 64, per: layers, start: -1}", "params.units_{i}.start: the first layer's number"),
    ("units_{i}: {type: int, low: 8, high: 64, per: layers, when: {layers: 2}}", "params.units_{i}.when: a family's members"),
])
def test_a_family_that_cannot_be_written_out_is_bad_input(tmp_path: Path, family: str, said: str) -> None:
    from kerasweep.search.space import load_space

    with pytest.raises(UserInputError, match="space.yaml: ") as caught:
        load_space(write_space(tmp_path, SPACE.format(family=family)))
    assert said in str(caught.value)
