"""Keras model builders by name: `build(name, values, input_shape, n_classes) -> keras.Model`.

A builder takes a plain mapping of values (sampled and fixed alike), so an exported config rebuilds
the winning model exactly, with or without kerasweep. Missing values take the defaults below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
from keras import layers, regularizers

Builder = Callable[[Mapping[str, Any], tuple[int, ...], int], keras.Model]

CNN_DEFAULTS = {
    "filters": 32,  # enough for 8x8 digits; doubled per block
    "blocks": 2,  # 8x8 -> 4x4 -> 2x2 with pooling
    "kernel_size": 3,
    "dense_units": 64,
    "dropout": 0.2,
    "activation": "relu",
    "l2": 0.0,
    "batch_norm": False,
}
MLP_DEFAULTS = {"units": 64, "layers": 2, "dropout": 0.1, "activation": "relu", "l2": 0.0, "batch_norm": False}


def build_cnn(values: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """Conv blocks (conv, optional batch norm, activation, pooling) then a dense head."""
    v = {**CNN_DEFAULTS, **values}
    reg = regularizers.l2(v["l2"]) if v["l2"] else None
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for block in range(int(v["blocks"])):
        x = layers.Conv2D(int(v["filters"]) * 2**block, int(v["kernel_size"]), padding="same", kernel_regularizer=reg)(x)
        if v["batch_norm"]:
            x = layers.BatchNormalization()(x)
        x = layers.Activation(v["activation"])(x)
        if x.shape[1] >= 2 and x.shape[2] >= 2:
            x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(float(v["dropout"]))(x)
    x = layers.Dense(int(v["dense_units"]), activation=v["activation"], kernel_regularizer=reg)(x)
    x = layers.Dropout(float(v["dropout"]))(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32")(x)  # float32 under mixed precision
    return keras.Model(inputs, outputs, name="cnn")


def build_mlp(values: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """Dense layers (dense, optional batch norm, activation, dropout) then a softmax classifier."""
    v = {**MLP_DEFAULTS, **values}
    reg = regularizers.l2(v["l2"]) if v["l2"] else None
    inputs = keras.Input(shape=input_shape)
    x = layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    for _ in range(int(v["layers"])):
        x = layers.Dense(int(v["units"]), kernel_regularizer=reg)(x)
        if v["batch_norm"]:
            x = layers.BatchNormalization()(x)
        x = layers.Activation(v["activation"])(x)
        x = layers.Dropout(float(v["dropout"]))(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mlp")


BUILDERS: dict[str, Builder] = {"cnn": build_cnn, "mlp": build_mlp}


def build(name: str, values: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """Build model `name` from `values`; raises KeyError listing the known names."""
    if name not in BUILDERS:
        raise KeyError(f"unknown model {name!r}; expected one of {', '.join(BUILDERS)}")
    return BUILDERS[name](values, input_shape, n_classes)
