"""Keras backends and packing trials on GPUs (issue 18), on a machine without a GPU: which worker gets which
GPU and memory share is read from the environment each worker process starts with; the backend a trial
trained on is read from its run. The contract suite (`test_task_contract.py`) runs every task on JAX too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from kerasweep.search.engines.optuna import Options, Placement, describe, placement
from tests.conftest import ROOT, invoke_cli, mlflow_client, run_cli, sweep_runs, write_space
from kerasweep.trainers import backend


def test_trials_per_gpu_places_k_workers_on_each_visible_gpu(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    # Rule: K per GPU is K x GPUs workers; --workers alone keeps its count, round robin over the GPUs
    assert placement(Options(trials_per_gpu=3)) == Placement(6, 3, ("0", "1"))
    assert placement(Options(workers=3)) == Placement(3, 2, ("0", "1"))
    # Rule: where GPUs are seen and nothing is said, 4 per GPU (the probe's best trade), and the first line says so
    assert placement(Options()).workers == 8
    assert describe(Options()) == "8 worker(s), 4 per GPU (default) on 2 GPU(s)"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert placement(Options(trials_per_gpu=3)) == Placement(1, 0, ())  # no GPU: one worker on the CPU
    assert describe(Options(trials_per_gpu=3)) == "1 worker(s) (no GPU seen: --trials-per-gpu unused)"


def test_each_packed_worker_gets_its_gpu_and_a_share_of_its_memory() -> None:
    envs = [backend.worker_environment(["0", "1"], slot, 4) for slot in range(8)]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0", "1"] * 4
    assert {env[backend.MEMORY_FRACTION_ENV] for env in envs} == {"0.225"}
    assert {env["XLA_PYTHON_CLIENT_MEM_FRACTION"] for env in envs} == {"0.225"}
    assert {env["XLA_PYTHON_CLIENT_PREALLOCATE"] for env in envs} == {"false"}
    assert backend.worker_environment(["0"], 0, 1) == {"CUDA_VISIBLE_DEVICES": "0"}  # alone: the whole GPU
    assert backend.worker_environment([], 0, 4) == {}


def test_mixed_precision_is_chosen_for_big_models_on_a_gpu_only() -> None:
    big = backend.MIXED_PRECISION_MIN_PARAMS
    assert backend.precision(None, 20_000, gpus=1) == "float32"  # the probe: small models are slower mixed
    assert backend.precision(None, big, gpus=1) == "mixed_float16"
    assert backend.precision(None, big, gpus=0) == "float32"
    assert backend.precision(True, 10, gpus=0) == "mixed_float16"  # the space decides when it says
    assert backend.precision(False, big, gpus=1) == "float32"


def test_bad_backend_and_both_packing_flags_are_one_line_exit_2(tmp_path: Path, tiny_space, monkeypatch) -> None:
    space = tiny_space()
    store = tmp_path / "store"
    both = invoke_cli("sweep", str(space), "--workers", "2", "--trials-per-gpu", "2", "--store", str(store))
    assert both.returncode == 2
    assert both.stderr.strip() == "error: --workers, --trials-per-gpu: give one of them (--trials-per-gpu K runs K " \
                                  "workers per GPU)"
    elsewhere = invoke_cli("sweep", str(space), "--engine", "ray", "--trials-per-gpu", "2", "--store", str(store))
    assert elsewhere.returncode == 2 and "--trials-per-gpu: engine 'ray' does not take it; optuna does" in elsewhere.stderr
    monkeypatch.setenv("KERAS_BACKEND", "mxnet")
    bad = invoke_cli("sweep", str(space), "--store", str(store))
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: KERAS_BACKEND: 'mxnet' is not a backend kerasweep runs on; expected one of " \
                                 "tensorflow, jax, torch"
    assert not store.exists()  # before anything is written


def test_a_backend_chosen_in_keras_json_is_the_one_checked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert backend.wanted() == "tensorflow"  # no keras.json: Keras' default
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax", "floatx": "float32"}))
    # Rule: kerasweep checks the backend Keras will load, wherever it was chosen (KERAS_BACKEND wins, as in Keras)
    assert backend.wanted() == "jax" and backend.backend_problem() is None
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "mxnet"}))
    assert backend.backend_problem() == f"{tmp_path / 'keras.json'}: backend: 'mxnet' is not a backend kerasweep " \
                                        "runs on; expected one of tensorflow, jax, torch"
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert backend.wanted() == "tensorflow" and backend.backend_problem() is None


def test_array_batches_serve_every_row_once_per_epoch_reshuffled_from_the_seed() -> None:
    from kerasweep.trainers.data import array_batches

    x, y = np.arange(10, dtype="float32")[:, None], np.arange(10)
    first = array_batches(x, y, 4, shuffle=True, seed=3)
    assert len(first) == 3 and [len(first[i][0]) for i in range(3)] == [4, 4, 2]
    epoch_one = np.concatenate([first[i][1] for i in range(3)])
    first.on_epoch_end()
    epoch_two = np.concatenate([first[i][1] for i in range(3)])
    assert sorted(epoch_one) == sorted(epoch_two) == list(range(10))
    assert list(epoch_one) != list(epoch_two)  # reshuffled each epoch
    again = array_batches(x, y, 4, shuffle=True, seed=3)
    assert list(np.concatenate([again[i][1] for i in range(3)])) == list(epoch_one)  # the same from the same seed
    kept = array_batches(x, y, 4, shuffle=False, seed=3)
    assert list(np.concatenate([kept[i][1] for i in range(3)])) == list(range(10))


def test_batches_for_several_devices_are_whole_and_split_evenly() -> None:
    from kerasweep.trainers.data import array_batches

    x, y = np.arange(10, dtype="float32")[:, None], np.arange(10)
    whole = array_batches(x, y, 4, shuffle=True, seed=3, shards=2)
    # Rule: on several devices training drops the last partial batch (other rows each epoch), so each splits evenly
    assert len(whole) == 2 and [len(whole[i][1]) for i in range(2)] == [4, 4]
    with pytest.raises(ValueError, match="batch_size: 3 does not split evenly over the 2 devices"):
        array_batches(x, y, 3, shuffle=True, seed=3, shards=2)
    with pytest.raises(ValueError, match="batch_size: 12 is more than the 10 training rows"):
        array_batches(x, y, 12, shuffle=True, seed=3, shards=2)


# two logical CPUs stand in for two GPUs on TensorFlow: what distribution() sees, and what MirroredStrategy spans
TWO_LOGICAL_GPUS = '''
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    cpus = tf.config.list_logical_devices("CPU")
    listed, mirrored = tf.config.list_logical_devices, tf.distribute.MirroredStrategy
    tf.config.list_logical_devices = lambda kind=None: cpus if kind == "GPU" else listed(kind)
    tf.distribute.MirroredStrategy = lambda: mirrored([d.name for d in cpus])
'''

# a trial's training step by step as fit.train takes it across several devices
ACROSS_DEVICES = '''
    import json

    import keras
    import numpy as np

    from kerasweep.trainers import backend
    from kerasweep.trainers.data import make_pipeline
    from kerasweep.trainers.fit import undistributed_validation

    rng = np.random.default_rng(0)
    x = rng.normal(size=(141, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    with backend.distribution() as devices:
        in_use = backend.devices_in_use()
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        # 111 training rows in batches of 8 end with 7; 30 validation rows (not a multiple of 4) with 6
        train = make_pipeline(x[30:], y[30:], 8, True, 0, devices)
        if backend.keeps_uneven_last_batch():
            validation = {"validation_data": make_pipeline(x[:30], y[:30], 8, False, shards=devices)}
        else:
            validation = {"callbacks": [undistributed_validation(x[:30], y[:30], 8)]}
        history = model.fit(train, epochs=2, verbose=0, **validation).history
        try:
            make_pipeline(x, y, 7, True, 0, devices)
            odd = None
        except ValueError as error:
            odd = str(error)
    alone = model.evaluate(x[:30], y[:30], verbose=0, return_dict=True)
    print(json.dumps({"devices": devices, "in_use": in_use, "history": history, "alone": alone, "odd": odd,
                      "after": keras.distribution.distribution() is None}))
'''


@pytest.mark.slow
@pytest.mark.parametrize(("backend_name", "count", "setup"), [
    ("jax", 4, ""),  # DataParallel over four CPU devices (XLA_FLAGS below), as over four GPUs
    ("tensorflow", 2, TWO_LOGICAL_GPUS),  # MirroredStrategy over two logical CPU devices
])
def test_a_trial_trains_across_several_devices_and_validates_on_every_row(backend_name: str, count: int, setup: str,
                                                                        tmp_path: Path) -> None:
    script = tmp_path / "across.py"
    script.write_text(textwrap.dedent(setup) + textwrap.dedent(ACROSS_DEVICES))
    env = {**os.environ, "KERAS_BACKEND": backend_name, "PYTHONPATH": str(ROOT),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert (seen["devices"], seen["in_use"], seen["after"]) == (count, count, True)
    # Rule: every validation row is scored: the epoch's val_ metrics are exactly the trained model's on one device
    # (JAX validates undistributed; padding its last batch would have counted padded rows in "accuracy")
    assert seen["history"]["val_accuracy"][-1] == pytest.approx(seen["alone"]["accuracy"], abs=1e-6)
    assert seen["history"]["val_loss"][-1] == pytest.approx(seen["alone"]["loss"], rel=1e-5)
    # Rule: a batch_size the devices cannot share evenly is refused, saying so (Keras fails on 4 + 3 rows a step)
    assert seen["odd"].startswith(f"batch_size: 7 does not split evenly over the {count} devices")


@pytest.mark.slow
def test_a_sweep_and_its_production_training_run_across_several_devices(tmp_path: Path) -> None:
    space = write_space(tmp_path, """
        name: several
        model: mlp
        data: iris
        budget: {trials: 2, epochs: 3}
        params:
          units: {type: categorical, choices: [8, 16]}
          batch_size: {type: categorical, choices: [8, 12]}
    """)
    store = tmp_path / "store"
    env = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = run_cli("sweep", str(space), "--store", str(store), env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    client = mlflow_client(store)
    _, runs = sweep_runs(client, "several", "several")
    # Rule: each trial trained across the four devices, and its run says so
    assert len(runs) == 2 and {r.data.tags.get("kerasweep.devices") for r in runs} == {"4"}
    trained = run_cli("train", str(store / "exports" / "several.yaml"), "--store", str(store), env=env)
    assert trained.returncode == 0, trained.stderr + trained.stdout
    assert client.get_run(client.get_model_version("several", "1").run_id).data.tags["kerasweep.devices"] == "4"
    odd = write_space(tmp_path, "name: odd\nmodel: mlp\ndata: iris\nbudget: {trials: 1, epochs: 2}\nparams:\n"
                                "  batch_size: {type: categorical, choices: [6]}\n", "odd.yaml")
    failed = run_cli("sweep", str(odd), "--store", str(store), env=env)
    # Rule: a batch that cannot split over the devices fails its trials with the fix, never trains on other values
    assert failed.returncode == 1
    assert "batch_size: 6 does not split evenly over the 4 devices" in " ".join(failed.stderr.split())
    # Rule: a HyperModel's own fit (arrays, its own batch size) is refused on several JAX devices, with the fix
    own_fit = run_cli("sweep", "kt_hypermodel", "--trials", "1", "--epochs", "1", "--store", str(store), env=env)
    assert own_fit.returncode == 1
    assert "on JAX, a HyperModel's own fit trains on one device and this trial sees 4" in " ".join(own_fit.stderr.split())


@pytest.mark.slow
def test_a_jax_sweep_packs_two_workers_on_a_gpu_and_its_export_trains_on_tensorflow(tmp_path: Path) -> None:
    space = write_space(tmp_path, """
        name: packed
        model: tests.probe_model:build
        data: iris
        budget: {trials: 4, epochs: 3}
        params:
          units: {type: categorical, choices: [8, 16]}
    """)
    store, probe = tmp_path / "store", tmp_path / "probe.jsonl"
    # a GPU named to the workers (CUDA_VISIBLE_DEVICES), none real: JAX on CPU ignores it, the workers' env shows it
    proc = run_cli("sweep", str(space), "--trials-per-gpu", "2", "--store", str(store),
                   env={"KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": "0", "PROBE_FILE": str(probe)})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "2 worker(s), 2 per GPU on 1 GPU(s)" in " ".join(proc.stdout.split())  # the first line, unwrapped
    seen = [json.loads(line) for line in probe.read_text().splitlines()]
    workers = [s for s in seen if s["KERASWEEP_GPU_MEMORY_FRACTION"] is not None]
    # Rule: every trial built in a worker that was started with its GPU and half of its memory
    assert len({s["pid"] for s in workers}) == 2
    assert {(s["CUDA_VISIBLE_DEVICES"], s["KERASWEEP_GPU_MEMORY_FRACTION"], s["XLA_PYTHON_CLIENT_MEM_FRACTION"],
             s["backend"]) for s in workers} == {("0", "0.450", "0.450", "jax")}
    _, runs = sweep_runs(mlflow_client(store), "packed", "packed")
    assert {r.data.tags.get("kerasweep.backend") for r in runs} == {"jax"}

    # Rule: the export of a JAX sweep trains on TensorFlow (the default backend) and says which it came from
    export = store / "exports" / "packed.yaml"
    assert yaml.safe_load(export.read_text())["provenance"]["backend"] == "jax"
    trained = run_cli("train", str(export), "--store", str(store), env={"PROBE_FILE": str(probe)})
    assert trained.returncode == 0, trained.stderr + trained.stdout
    assert json.loads(probe.read_text().splitlines()[-1])["backend"] == "tensorflow"


@pytest.mark.slow
def test_a_tensorflow_sweeps_export_trains_on_jax(tmp_path: Path) -> None:
    space = write_space(tmp_path, """
        name: tf2jax
        model: mlp
        data: iris
        budget: {trials: 1, epochs: 3}
        params:
          units: {type: categorical, choices: [8, 16]}
    """)
    store = tmp_path / "store"
    swept = invoke_cli("sweep", str(space), "--store", str(store))  # this process: TensorFlow
    assert swept.returncode == 0, swept.stderr + swept.stdout
    export = store / "exports" / "tf2jax.yaml"
    assert yaml.safe_load(export.read_text())["provenance"]["backend"] == "tensorflow"
    trained = run_cli("train", str(export), "--store", str(store), env={"KERAS_BACKEND": "jax"})
    assert trained.returncode == 0, trained.stderr + trained.stdout
    client = mlflow_client(store)
    version = client.get_model_version("tf2jax", "1")
    # Rule: production trains on the backend of its own process, and its run says so
    assert client.get_run(version.run_id).data.tags["kerasweep.backend"] == "jax"
