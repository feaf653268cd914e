"""trainers/: data loading and splitting, model builders, the catalog, and independence from search/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from kerasweep.trainers import catalog
from kerasweep.trainers.data import DataError, load_arrays


@pytest.mark.parametrize("name, shape, classes", [("digits", (8, 8, 1), 10), ("breast_cancer", (30,), 2),
                                                 ("wine", (13,), 3), ("iris", (4,), 3)])
def test_bundled_datasets_split_stratified_and_deterministic(name: str, shape: tuple, classes: int) -> None:
    data = load_arrays(name, 0.2, 0)
    # Rule: bundled sets load offline with the right shapes and class counts
    assert data.input_shape == shape and data.n_classes == classes
    # Rule: the split is stratified (every class on both sides, in proportion)
    train_share = np.bincount(data.y_train) / len(data.y_train)
    val_share = np.bincount(data.y_val) / len(data.y_val)
    assert np.allclose(train_share, val_share, atol=0.03)
    # Rule: the same seed gives the same split; another seed another split
    again = load_arrays.__wrapped__(name, 0.2, 0)
    other = load_arrays.__wrapped__(name, 0.2, 1)
    assert np.array_equal(again.x_val, data.x_val)
    assert not np.array_equal(other.x_val, data.x_val)


def test_scaling_is_fitted_on_the_training_part_only() -> None:
    data = load_arrays("wine", 0.2, 0)
    x_train, x_val = data.scaled()
    # Rule: the arrays stay raw; train features are standardised exactly, validation only approximately
    assert data.x_train.max() > 100  # wine's proline, raw
    assert np.allclose(x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(x_train.std(axis=0), 1, atol=1e-4)
    assert not np.allclose(x_val.mean(axis=0), 0, atol=1e-5)
    images = load_arrays("digits", 0.2, 0)
    assert images.scaled()[0].max() == pytest.approx(1.0)


@pytest.mark.parametrize("data, model", [("breast_cancer", "mlp"), ("digits", "cnn")])
def test_a_saved_model_answers_raw_inputs_as_its_trial_did(tmp_path: Path, data: str, model: str) -> None:
    import keras

    from kerasweep.trainers.fit import TrainSpec, train

    spec = TrainSpec(model=model, data=data, params={"units": 16, "filters": 8, "batch_size": 64}, epochs=2)
    result = train(spec, checkpoint_path=tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")  # as production and serving load it
    split = load_arrays(data, 0.2, 0)
    accuracy = float(np.mean(loaded.predict(split.x_val, verbose=0).argmax(axis=1) == split.y_val))
    # Rule: the input scaling lives in the model: raw rows score what the trial logged (0.77 vs 0.94 before)
    assert accuracy == pytest.approx(result.best_value, abs=1e-6)
    assert loaded.layers[1].name in ("standardize", "rescale")


def test_user_files_npz_csv_and_image_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(40, 5)), y=np.repeat(["a", "b"], 20))
    assert load_arrays(str(tmp_path / "d.npz")).classes == ("a", "b")
    (tmp_path / "d.csv").write_text("f1,f2,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(20)))
    assert load_arrays(str(tmp_path / "d.csv")).input_shape == (2,)
    from PIL import Image

    for label in ("cat", "dog"):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(tmp_path / "img" / label / f"{i}.png")
    folder = load_arrays(str(tmp_path / "img"))
    assert folder.input_shape == (32, 32, 3) and folder.n_classes == 2


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: np.savez(p / "f.npz", x=np.zeros((0, 3)), y=np.zeros(0)), "no examples"),
        (lambda p: np.savez(p / "f.npz", features=np.zeros((4, 3))), "missing array(s) x, y"),
        (lambda p: np.savez(p / "f.npz", x=np.zeros((10, 3)), y=np.zeros(7)), "one row per example"),
        (lambda p: np.savez(p / "f.npz", x=np.zeros((10, 3)), y=np.linspace(0, 1, 10)), "not classes"),
        (lambda p: np.savez(p / "f.npz", x=np.zeros((10, 3)), y=np.zeros(10)), "at least 2 classes"),
        (lambda p: np.savez(p / "f.npz", x=np.zeros((10, 2, 2, 2, 2)), y=np.arange(10) % 2), "features have shape"),
        (lambda p: (p / "f.csv").write_text("a,b\n1,2\n"), "no target column 'label'"),
        (lambda p: (p / "f.csv").write_text("a_id,label\nx,0\ny,1\nz,0\nw,1\n"), "no feature column is left"),
        (lambda p: (p / "f.npz").write_text("not a zip"), "not a readable .npz"),
    ],
)
def test_bad_data_files_raise_a_clear_error(tmp_path: Path, make, message: str) -> None:
    make(tmp_path)
    path = next(tmp_path.glob("f.*"))
    with pytest.raises(DataError) as info:
        load_arrays.__wrapped__(str(path))
    # Rule: the message names the file and what is wrong
    assert str(path) in str(info.value) and message in str(info.value)


def test_catalog_matches_the_builders() -> None:
    from kerasweep.trainers.fit import TRAINING_DEFAULTS
    from kerasweep.trainers.models import BUILDERS, CNN_DEFAULTS, MLP_DEFAULTS, TRANSFER_DEFAULTS

    # Rule: the names validation accepts are exactly the values the code reads
    assert set(BUILDERS) == set(catalog.MODEL_PARAMS)
    assert set(CNN_DEFAULTS) == set(catalog.MODEL_PARAMS["cnn"])
    assert set(MLP_DEFAULTS) == set(catalog.MODEL_PARAMS["mlp"])
    assert set(TRANSFER_DEFAULTS) == set(catalog.MODEL_PARAMS["transfer"])
    assert set(TRAINING_DEFAULTS) == set(catalog.TRAINING_PARAMS)
    import keras

    for name in catalog.ACTIVATIONS:
        assert keras.activations.get(name) is not None
    for cls in catalog.OPTIMIZERS.values():
        assert hasattr(keras.optimizers, cls)


@pytest.mark.parametrize("model, data", [("cnn", "digits"), ("mlp", "wine")])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_builders_train_one_epoch(model: str, data: str, batch_norm: bool, tmp_path: Path) -> None:
    from kerasweep.trainers.fit import TrainSpec, train

    spec = TrainSpec(model=model, data=data, epochs=1, params={"batch_norm": batch_norm, "l2": 1e-4,
                                                                 "optimizer": "adamw", "activation": "gelu"})
    result = train(spec, checkpoint_path=tmp_path / "m.keras")
    # Rule: one epoch trains, produces every catalogued metric, and saves a loadable model
    from kerasweep.trainers.fit import OWN_METRICS

    # kerasweep's own metrics (balanced accuracy, AUCs) are compiled only when the objective names one
    assert set(result.history) == {m for m in catalog.METRICS if m.removeprefix("val_") not in
                                   OWN_METRICS["classification"]}
    assert result.epochs_run == 1 and 0.0 <= result.best_value <= 1.0
    assert (tmp_path / "m.keras").stat().st_size > 0
    has_bn = any(layer.__class__.__name__ == "BatchNormalization" for layer in result.network.layers)
    assert has_bn == batch_norm


def test_trainers_never_import_search() -> None:
    code = ("import sys, kerasweep.trainers.fit, kerasweep.trainers.models, kerasweep.trainers.data, "
            "kerasweep.trainers.catalog; "
            "bad = [m for m in sys.modules if m == 'kerasweep.search' or m.startswith('kerasweep.search.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    # Rule: trainers/ stands alone for production training (DESIGN.md)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_backups_keep_the_latest_epoch_and_a_resumed_run_continues_it(tmp_path: Path) -> None:
    import keras

    from kerasweep.trainers.fit import BackupPolicy, TrainSpec, latest_backup, train

    spec = TrainSpec(model="mlp", data="iris", epochs=4, params={"patience": 10})
    train(spec, backup=BackupPolicy(tmp_path / "often", every_s=0))
    train(spec, backup=BackupPolicy(tmp_path / "rarely", every_s=3600))
    # Rule: with 0 s a copy after every epoch but the last (the trial ends then), only the newest kept
    found = latest_backup(tmp_path / "often")
    assert found.epoch == 3 and [p.name for p in (tmp_path / "often").iterdir()] == ["epoch-3.keras"]
    assert latest_backup(tmp_path / "rarely") is None
    # Rule: the copy holds the optimizer state, and training continues after its epoch
    saved = keras.models.load_model(found.path)
    assert int(saved.optimizer.iterations.numpy()) > 0
    resumed = train(spec, resume=found)
    assert resumed.epochs_run == 1
