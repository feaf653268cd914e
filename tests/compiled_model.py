"""Test builders that compile their own model, as code written for plain Keras does."""

from __future__ import annotations

import keras


def ignores_the_space(values, input_shape, n_outputs):
    """Compiles with Adam's default learning rate whatever the space searched (a silent no-op before)."""
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(n_outputs, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def uses_the_space(values, input_shape, n_outputs):
    """Compiles with the searched learning rate and its own loss: both kept."""
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(n_outputs, activation="softmax")])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=values["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    return model


def reads_width_only(values, input_shape, n_outputs):
    """Reads `width` but not `depth`: a searched depth would be logged without having acted."""
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Dense(int(values["width"]), activation="relu"),
                              keras.layers.Dense(n_outputs, activation="softmax")])
    return model
