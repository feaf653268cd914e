"""A model builder that says where its trial trains: one JSON line per build in $PROBE_FILE with the process,
the Keras backend, the device platform and the GPU environment the worker was started with (the GPU packing
tests read it)."""

from __future__ import annotations

import json
import os
from typing import Any

import keras

from kerasweep.trainers.backend import gpu_count

ENVIRONMENT = ("CUDA_VISIBLE_DEVICES", "KERASWEEP_GPU_MEMORY_FRACTION", "XLA_PYTHON_CLIENT_MEM_FRACTION")


def _platform(backend: str) -> str:
    if backend == "jax":  # the device JAX places arrays on, and so trains on
        import jax

        return jax.devices()[0].platform
    return "gpu" if gpu_count() else "cpu"


def build(values: dict[str, Any], input_shape: tuple[int, ...], n_outputs: int, head: str) -> Any:
    backend = keras.backend.backend()
    with open(os.environ["PROBE_FILE"], "a") as out:
        out.write(json.dumps({"pid": os.getpid(), "backend": backend, "platform": _platform(backend),
                              **{k: os.environ.get(k) for k in ENVIRONMENT}}) + "\n")
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(values["units"], activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(n_outputs, activation=head)(x))
