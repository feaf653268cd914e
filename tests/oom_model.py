"""A user model builder that can ask for more memory than any machine has (for the out-of-memory test)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

HUGE = 16


def build(values: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """With `size: 16` (the top of its range) the hidden layer's weights need about 4 TB: TensorFlow raises
    ResourceExhaustedError. One value in sixteen, so a random sampler seldom draws it twice in a row."""
    units = 2**38 if values.get("size") == HUGE else 16
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Dense(units, activation="relu"),
                             keras.layers.Dense(n_classes, activation="softmax")])
