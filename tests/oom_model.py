"""A user model builder that can ask for more memory than any machine has (for the out-of-memory test)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras


def build(values: Mapping[str, Any], input_shape: tuple[int, ...], n_classes: int) -> keras.Model:
    """With `huge: true` the hidden layer's weights need about 4 TB: TensorFlow raises ResourceExhaustedError."""
    units = 2**38 if values.get("huge") else 16
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Dense(units, activation="relu"),
                             keras.layers.Dense(n_classes, activation="softmax")])
