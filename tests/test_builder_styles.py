"""Model code written for other tools runs unchanged (issue 13): KerasTuner's `build_model(hp)` and Optuna's
`create_model(trial)` declare their own spaces by running; their own compile() trains; logged params are
the ones the builder asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kerasweep.search.errors import UserInputError
from tests.conftest import mlflow_client, sweep_runs, write_space


def _sweep(tmp_path: Path, text: str, name: str, engine: str = "optuna"):
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep

    config = make_config(load_space(write_space(tmp_path, text)), store=tmp_path / "store", engine=engine)
    result = run_sweep(config)
    return result, sweep_runs(mlflow_client(tmp_path / "store"), name, name)[1]


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner"])
def test_keras_tuners_getting_started_model_runs_unchanged(tmp_path: Path, monkeypatch, engine: str) -> None:
    import keras

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # examples/ is importable from the project folder
    result, runs = _sweep(tmp_path, """
        name: ktgs
        model: examples.keras_tuner_getting_started:build_model
        data: digits
        budget: {trials: 2, epochs: 2}
        search: {sampler: random}
        """, "ktgs", engine)
    assert len(runs) == 2
    for run in runs:
        trial = next(t for t in result.trials if t.mlflow_run_id == run.info.run_id)
        layers = int(trial.params["num_layers"])
        # Rule: a trial's logged params are exactly the ones the builder asked for, as it named them
        assert set(run.data.params) == {"num_layers", "activation", "dropout", "lr",
                                        *(f"units_{i}" for i in range(layers))}
        assert {k: str(v) for k, v in trial.params.items()} == run.data.params
    model, logged = _checkpoint_of_a_complete_trial(tmp_path / "store", runs)
    # Rule: the learning rate logged is the one the checkpoint's optimizer trained with (its own Adam compile)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(np.asarray(model.optimizer.learning_rate)) == pytest.approx(float(logged["lr"]))


def _checkpoint_of_a_complete_trial(store: Path, runs: list) -> tuple[Any, dict[str, str]]:
    """The saved model of the first complete trial, and the params its run logged."""
    import keras

    complete = [r for r in runs if r.data.tags["kerasweep.state"] == "complete"]
    assert complete
    model = keras.models.load_model(mlflow_client(store).download_artifacts(complete[0].info.run_id,
                                                                            "checkpoint/model.keras"))
    return model, complete[0].data.params


def test_optunas_keras_example_runs_with_the_space_narrowing_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    result, runs = _sweep(tmp_path, """
        name: optk
        model: examples.optuna_keras:create_model
        data: digits
        budget: {trials: 2, epochs: 2}
        fixed: {n_layers: 2}
        params:
          learning_rate: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
        """, "optk")
    for run in runs:
        params = run.data.params
        # Rule: the space fixes or narrows names the builder declares; per-layer names follow the loop
        assert params["n_layers"] == "2" and {"n_units_l0", "n_units_l1", "dropout_l0", "dropout_l1"} <= set(params)
        assert 1e-3 <= float(params["learning_rate"]) <= 1e-2
    assert result.best is not None


def test_a_builder_whose_signature_fits_no_style_is_one_line_before_any_trial(tmp_path: Path, monkeypatch) -> None:
    from kerasweep.search.space import load_space

    monkeypatch.chdir(tmp_path)  # the user's folder: its modules are importable
    monkeypatch.syspath_prepend(str(tmp_path))

    (tmp_path / "odd_builder.py").write_text("def build(a, b):\n    return None\n")
    path = write_space(tmp_path, "name: o\nmodel: odd_builder:build\ndata: iris\n")
    with pytest.raises(UserInputError, match=r"model: the model builder takes \(a, b\); expected one of") as caught:
        load_space(path)
    assert len(str(caught.value).splitlines()) == 1


def test_define_by_run_builders_are_refused_where_the_engine_cannot_run_them(tmp_path: Path, monkeypatch) -> None:
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    space = load_space(write_space(tmp_path, "name: o\nmodel: examples.optuna_keras:create_model\ndata: digits\n"))
    with pytest.raises(UserInputError, match="engine 'keras-tuner' does not; pass --engine optuna or ray"):
        make_config(space, store=tmp_path / "store", engine="keras-tuner")


def test_replaying_an_export_rebuilds_the_model_the_trial_asked_for() -> None:
    from kerasweep.trainers.suggest import Suggestions

    asked = Suggestions.replay({"n_layers": 1, "n_units_l0": 7, "dropout_l0": 0.3, "learning_rate": 0.01})
    from examples.optuna_keras import create_model

    model = create_model(asked)
    model.build((None, 8, 8, 1))
    # Rule: production training rebuilds exactly the trial's network from the exported values
    assert [layer.units for layer in model.layers if hasattr(layer, "units")] == [7, 10]
    with pytest.raises(KeyError, match="asks for 'n_layers'"):
        create_model(Suggestions.replay({}))


@pytest.mark.slow  # a private Ray starts (about 20 s)
def test_optunas_keras_example_runs_on_the_ray_engine(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    store = tmp_path / "store"
    proc = run_cli("sweep", "optuna_keras", "--engine", "ray", "--trials", "2", "--epochs", "2", "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    _, runs = sweep_runs(mlflow_client(store), "optuna_keras", "optuna_keras")
    for run in runs:
        layers = int(run.data.params["n_layers"])
        # Rule: the driver runs the builder to ask for its values; each trial logs exactly those names
        assert set(run.data.params) == {"n_layers", "learning_rate", *(f"n_units_l{i}" for i in range(layers)),
                                        *(f"dropout_l{i}" for i in range(layers))}


@pytest.mark.slow  # a private Ray starts (about 20 s)
def test_keras_tuners_getting_started_model_runs_on_the_ray_engine(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    store = tmp_path / "store"
    proc = run_cli("sweep", "kt_getting_started", "--engine", "ray", "--trials", "2", "--epochs", "2", "--store",
                   str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    _, runs = sweep_runs(mlflow_client(store), "kt_getting_started", "kt_getting_started")
    for run in runs:
        layers = int(run.data.params["num_layers"])
        # Rule: a function of hp runs on ray too; each trial logs exactly the names it asked for
        assert set(run.data.params) == {"num_layers", "activation", "dropout", "lr", *(f"units_{i}" for i in range(layers))}
    model, logged = _checkpoint_of_a_complete_trial(store, runs)
    # Rule: the logged learning rate is the one its own compile trained with
    assert float(np.asarray(model.optimizer.learning_rate)) == pytest.approx(float(logged["lr"]))


@pytest.mark.parametrize("engine", ["optuna", "keras-tuner"])
def test_a_hypermodels_own_fit_trains_and_its_params_are_logged(tmp_path: Path, monkeypatch, engine: str) -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # examples/ is importable from the project folder
    _, runs = _sweep(tmp_path, """
        name: kthm
        model: examples.keras_tuner_hypermodel:MyHyperModel
        data: digits
        budget: {trials: 2, epochs: 2}
        search: {sampler: random}
        """, "kthm", engine)
    # Rule: the params its fit asked for (batch size, shuffling) are searched and logged beside build's
    assert len(runs) == 2 and all(set(r.data.params) == {"units", "batch_size", "shuffle"} for r in runs)
    assert "complete" in [r.data.tags["kerasweep.state"] for r in runs]
    seen: list[int] = []
    import keras

    class Steps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: object = None) -> None:
            seen.append(batch)

    spec = TrainSpec(model="examples.keras_tuner_hypermodel:MyHyperModel", data="digits", epochs=1,
                     params={"units": 32, "batch_size": 16, "shuffle": False})
    train(spec, callbacks=[Steps()])
    # Rule: its fit's batch size acts (1437 training images in batches of 16: 90 steps), replayed in production
    assert len(seen) == 90


def test_the_ray_engine_refuses_a_hypermodels_own_fit_before_any_work(tmp_path: Path, monkeypatch) -> None:
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    space = load_space(write_space(tmp_path, "name: kthm\nmodel: examples.keras_tuner_hypermodel:MyHyperModel\n"
                                             "data: digits\n"))
    # Rule: ray asks a builder's values on the driver before training, so a fit that asks is refused there
    with pytest.raises(UserInputError, match="overrides HyperModel.fit, whose values the ray engine cannot ask for"):
        make_config(space, store=tmp_path / "store", engine="ray")
    assert not (tmp_path / "store").exists()
