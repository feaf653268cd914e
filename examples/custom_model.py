"""An example user model builder: `model: examples.custom_model:build` in a space file.

A builder takes the trial's values (searched and fixed), the input shape and the class count, and
returns an uncompiled Keras model; kerasweep compiles and trains it with the usual loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import layers


def build(values: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """A small Sequential CNN whose width and depth come from `values`."""
    model = keras.Sequential([keras.Input(shape=input_shape)])
    for _ in range(int(values.get("conv_layers", 1))):
        model.add(layers.Conv2D(int(values.get("width", 16)), 3, padding="same", activation="relu"))
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(n_classes, activation="softmax", dtype="float32"))
    return model
