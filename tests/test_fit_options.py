"""A space's `fit:` (class weights by class name, shuffling) and `callbacks:` (the user's own Keras
callbacks) act in every trial and in production training (issue 13)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from kerasweep.search.errors import UserInputError
from tests.conftest import write_space
from kerasweep.trainers.fit_options import FitOptionError, class_weights

SPACE = """
    name: weighed
    model: mlp
    data: breast_cancer
    task: binary
    budget: {{trials: 1, epochs: 2}}
    params:
      units: {{type: categorical, choices: [8]}}
    {extra}
"""


def test_class_weights_by_name_and_balanced() -> None:
    data = SimpleNamespace(classes=("benign", "malignant"), class_counts=lambda: (300, 100))
    # Rule: weights are given by class name; a class not named keeps 1; balanced is n / (classes x count)
    assert class_weights({"malignant": 3.0}, data) == {0: 1.0, 1: 3.0}
    assert class_weights("balanced", data) == {0: pytest.approx(400 / 600), 1: pytest.approx(2.0)}
    with pytest.raises(FitOptionError, match="fit.class_weight: no class 'cancer' in the data; its classes are benign, malignant"):
        class_weights({"cancer": 2.0}, data)


def test_a_class_weight_acts_on_training() -> None:
    from kerasweep.trainers.fit import TrainSpec, load_data, train

    spec = TrainSpec(model="mlp", data="breast_cancer", task="binary", epochs=3, params={"units": 8})
    data = load_data(spec)
    plain = train(spec).model.predict(data.x_val, verbose=0).mean()
    weighed = train(TrainSpec(**{**spec.__dict__, "fit": {"class_weight": {0: 30.0}}})).model.predict(
        data.x_val, verbose=0).mean()
    # Rule: weighing class 0 thirty times moves the model's answers towards it (same seed, same data)
    assert weighed < plain - 0.05, (weighed, plain)


def test_the_users_callbacks_run_in_trials_and_fit_options_reach_the_export(tmp_path: Path, monkeypatch) -> None:
    from kerasweep.search.export import export_best, read_export
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep
    from tests import user_data

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    extra = "fit: {class_weight: balanced, shuffle: false}\n    callbacks: tests.user_data:marks"
    user_data.EPOCHS_SEEN.clear()
    run_sweep(make_config(load_space(write_space(tmp_path, SPACE.format(extra=extra))), store=tmp_path / "store"))
    # Rule: the user's callbacks saw every epoch of the trial
    assert user_data.EPOCHS_SEEN == [0, 1]
    spec = read_export(export_best("weighed", tmp_path / "store")[0])[0]
    # Rule: production training gets the same fit options and callbacks
    assert spec.fit == {"class_weight": "balanced", "shuffle": False} and spec.callbacks == "tests.user_data:marks"


@pytest.mark.parametrize(("extra", "said"), [
    ("fit: {class_weight: {cancer: 2.0}}", "fit.class_weight: no class 'cancer' in the data"),
    ("fit: {class_weight: {0: -1.0}}", "fit.class_weight: weights must be finite numbers > 0"),
    ("fit: {epochs: 3}", "fit.epochs: unknown key"),
    ("fit: {class_weight: balanced}  # regression", "fit.class_weight: task regression has no classes to weight"),
    ("callbacks: tests.user_data:not_callbacks", "callbacks: tests.user_data:not_callbacks returned str; expected a list"),
    ("callbacks: tests.user_data:nowhere", "callbacks: cannot load 'tests.user_data:nowhere'"),
])
def test_fit_options_that_cannot_act_are_bad_input(tmp_path: Path, extra: str, said: str) -> None:
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config

    store = tmp_path / "store"
    text = SPACE.format(extra=extra)
    text = text.replace("task: binary", "task: regression") if "# regression" in extra else text
    with pytest.raises(UserInputError, match="space.yaml: ") as caught:
        make_config(load_space(write_space(tmp_path, text)), store=store)
    assert said in str(caught.value)
    assert not store.exists()
