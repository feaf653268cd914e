"""Every knob a space can reach trains for one epoch; the docs' param table matches the code."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke_cli, mlflow_client, run_cli, sweep_runs
from kerasweep.trainers import catalog

OPTIONS = [
    {"optimizer": "nadam", "clipnorm": 1.0},
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
    {"optimizer": "adamw", "weight_decay": 1e-3},
    {"lr_schedule": "cosine", "warmup_epochs": 1},
    {"lr_schedule": "exponential", "decay_rate": 0.9},
    {"lr_schedule": "step", "decay_rate": 0.5, "step_epochs": 1},
    {"lr_schedule": "plateau", "plateau_factor": 0.5, "plateau_patience": 1},
    {"augment": True, "translate": 0.1, "rotate": 0.05, "zoom": 0.1, "contrast": 0.1},
    {"pooling": "avg", "blocks": 3, "kernel_size": 5, "batch_norm": True},
    {"pooling": "none", "blocks": 1, "min_delta": 0.01, "mixed_precision": False},
]


@pytest.mark.parametrize("values", OPTIONS, ids=[",".join(f"{k}={v}" for k, v in o.items()) for o in OPTIONS])
def test_each_option_builds_and_trains(values: dict) -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    result = train(TrainSpec(model="cnn", data="digits", params=values, epochs=2))
    # Rule: the option trains (finite loss) and produces the objective every epoch
    assert len(result.history["val_accuracy"]) == 2
    assert all(math.isfinite(v) for v in result.history["loss"])
    layers = {layer.__class__.__name__ for layer in result.network.layers}
    if values.get("augment"):
        assert "Sequential" in layers  # the augmentation block is part of the model
    if values.get("pooling") == "avg":
        assert "AveragePooling2D" in layers and "MaxPooling2D" not in layers
    if values.get("pooling") == "none":
        assert not {"AveragePooling2D", "MaxPooling2D"} & layers


@pytest.mark.parametrize("backbone", ["mobilenet_v3_small", pytest.param("efficientnet_b0", marks=pytest.mark.slow)])
def test_transfer_model_freezes_and_loads_local_weights(backbone: str, tmp_path: Path) -> None:
    from kerasweep.trainers.fit import TrainSpec, train
    from kerasweep.trainers.models import build

    donor = build("transfer", {"backbone": backbone}, (8, 8, 1), 10).get_layer(index=3)
    weights = tmp_path / "backbone.weights.h5"
    donor.save_weights(weights)
    values = {"backbone": backbone, "weights": str(weights), "freeze_fraction": 0.5, "head_units": 16}
    model = build("transfer", values, (8, 8, 1), 10)
    backbone_model = model.get_layer(index=3)
    # Rule: pretrained weights come from the local file, and the first half of the backbone is frozen
    for mine, theirs in zip(backbone_model.get_weights()[:5], donor.get_weights()[:5]):
        assert (mine == theirs).all()
    trainable = [layer.trainable for layer in backbone_model.layers]
    assert not any(trainable[: len(trainable) // 2]) and any(trainable[len(trainable) // 2:])
    result = train(TrainSpec(model="transfer", data="digits", params={**values, "batch_size": 128}, epochs=1))
    assert math.isfinite(result.history["loss"][0])


def test_learning_rate_schedule_values() -> None:
    from kerasweep.trainers.fit import TRAINING_DEFAULTS, learning_rate_at

    values = {**TRAINING_DEFAULTS, "learning_rate": 0.1, "warmup_epochs": 1, "lr_schedule": "cosine"}
    # Rule: linear warm-up, then cosine from the base rate down towards 0
    assert learning_rate_at(0, values, 5) == pytest.approx(0.05)
    assert learning_rate_at(1, values, 5) == pytest.approx(0.1)
    assert learning_rate_at(3, values, 5) == pytest.approx(0.05)
    step = {**values, "warmup_epochs": 0, "lr_schedule": "step", "decay_rate": 0.5, "step_epochs": 2}
    assert [learning_rate_at(e, step, 6) for e in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_scheduled_rate_is_what_the_optimizer_used() -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    values = {"learning_rate": 0.01, "lr_schedule": "exponential", "decay_rate": 0.5}
    result = train(TrainSpec(model="mlp", data="iris", params=values, epochs=3))
    # Rule: Keras logs the rate each epoch trained with, and it follows the schedule
    assert result.history["learning_rate"] == pytest.approx([0.01, 0.005, 0.0025])


def test_the_docs_param_table_matches_the_catalog() -> None:
    readme = (ROOT / "docs" / "spaces.md").read_text()
    table = readme.split("<!-- params-table -->")[1].split("<!-- /params-table -->")[0]
    rows = re.findall(r"^\| `([a-z_0-9]+)` \| ([a-z_0-9]+) \| (.+) \|$", table, re.MULTILINE)
    documented = {(name, model): meaning for name, model, meaning in rows}
    in_code = {(k, "all"): v for k, v in catalog.TRAINING_PARAMS.items()}
    for model, params in catalog.MODEL_PARAMS.items():
        in_code.update({(k, model): v for k, v in params.items()})
    # Rule: every param the code reads is documented, with the same meaning, and nothing else is
    assert documented == in_code


@pytest.mark.parametrize("space", ["cnn_full", "custom", "regression", *(pytest.param(name, marks=pytest.mark.slow) for name in (
    "rnn", "transfer", "kt_getting_started", "kt_hypermodel", "optuna_keras"))])
def test_example_spaces_run_end_to_end(space: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = invoke_cli("sweep", space, "--trials", "2", "--epochs", "2", "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    _, runs = sweep_runs(mlflow_client(store), space, space)
    # Rule: the shipped example spaces (including a user builder) run and log their trials
    assert sum(r.data.tags["kerasweep.state"] in ("complete", "pruned") for r in runs) == 2


def test_user_builder_that_cannot_load_is_bad_input(tmp_path: Path) -> None:
    space = tmp_path / "s.yaml"
    space.write_text("name: u\nmodel: examples.custom_model:nope\ndata: digits\n"
                     "params:\n  width: {type: categorical, choices: [8]}\n")
    proc = invoke_cli("sweep", str(space), "--store", str(tmp_path / "store"))
    # Rule: a builder that does not exist fails validation with the file and field, before any work
    assert proc.returncode == 2
    assert "model: cannot load model builder 'examples.custom_model:nope'" in " ".join(proc.stderr.split())
    assert not (tmp_path / "store").exists()


def test_debug_runs_one_trial_eagerly_with_keras_logs(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = run_cli("sweep", "mlp", "--debug", "--epochs", "2", "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    _, runs = sweep_runs(mlflow_client(store), "mlp", "mlp")
    # Rule: --debug runs exactly one trial, eagerly, and shows Keras' own per-epoch lines
    assert len(runs) == 1
    assert "Epoch 1/2" in proc.stdout + proc.stderr
    assert runs[0].data.tags["kerasweep.debug"] == "true"


def test_mlp_layer_widths_and_l1_penalty() -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    values = {"layers": 3, "units": 16, "units_2": 32, "units_3": 8, "l1": 1e-4, "l2": 0.0}
    result = train(TrainSpec(model="mlp", data="wine", params=values, epochs=1))
    dense = [layer for layer in result.network.layers if layer.__class__.__name__ == "Dense"]
    # Rule: each hidden layer takes its own width when given; the penalty is L1 when l1 > 0
    assert [layer.units for layer in dense] == [16, 32, 8, 3]
    assert dense[0].kernel_regularizer.get_config()["l1"] == pytest.approx(1e-4)
    # and a layer without its own width keeps the one before it
    two = train(TrainSpec(model="mlp", data="wine", params={"layers": 3, "units": 16, "units_2": 24}, epochs=1))
    assert [layer.units for layer in two.network.layers if layer.__class__.__name__ == "Dense"] == [16, 24, 24, 3]


def test_mixed_precision_override_stays_with_its_trial() -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    forced = train(TrainSpec(model="mlp", data="iris", params={"mixed_precision": True}, epochs=1))
    after = train(TrainSpec(model="mlp", data="iris", params={}, epochs=1))
    # Rule: a space's mixed_precision applies to its trial only; the next trial is back on the CPU default
    assert forced.network.layers[1].dtype_policy.name == "mixed_float16"
    assert after.network.layers[1].dtype_policy.name == "float32"
