"""Data functions a space names as `data: tests.user_data:<function>` (the user's own loading code)."""

from __future__ import annotations

from typing import Any


def wine() -> dict[str, Any]:
    """A mapping: features with their column names, labels as text."""
    from sklearn.datasets import load_wine

    bunch = load_wine()
    return {"x": bunch.data, "y": [f"cultivar-{c}" for c in bunch.target], "features": bunch.feature_names}


def pairs() -> tuple[Any, Any]:
    """A plain (x, y) pair."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    return bunch.data, bunch.target


def wrong() -> str:
    return "not arrays"


WINE_NAMES = ("barolo", "grignolino", "barbera")


def streamed() -> dict[str, Any]:
    """tf.data datasets read row by row from a generator, as data bigger than memory would be: wine, every
    fifth row for validation, text class names, feature columns named."""
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_wine

    bunch = load_wine()
    names = np.array(WINE_NAMES)[bunch.target]
    signature = (tf.TensorSpec((13,), tf.float64), tf.TensorSpec((), tf.string))

    def rows(validation: bool) -> Any:
        return tf.data.Dataset.from_generator(
            lambda: ((bunch.data[i], names[i]) for i in range(len(names)) if (i % 5 == 0) == validation),
            output_signature=signature)

    return {"train": rows(False), "validation": rows(True), "features": bunch.feature_names}


def streamed_regression() -> tuple[Any, Any]:
    """A (train, validation) pair of batched datasets: diabetes, raw targets."""
    import tensorflow as tf
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, scaled=False)
    return (tf.data.Dataset.from_tensor_slices((x[:350], y[:350])).batch(32),
            tf.data.Dataset.from_tensor_slices((x[350:], y[350:])).batch(32))


def streamed_empty() -> tuple[Any, Any]:
    import tensorflow as tf

    empty = tf.data.Dataset.from_tensor_slices((tf.zeros((0, 4)), tf.zeros((0,), tf.int64)))
    return empty, empty


EPOCHS_SEEN: list[int] = []  # what `marks` callbacks saw, for the test to read


def marks() -> list[Any]:
    """The user's own Keras callbacks (`callbacks: tests.user_data:marks`): records each finished epoch."""
    import keras

    class Mark(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            EPOCHS_SEEN.append(epoch)

    return [Mark()]


def not_callbacks() -> list[Any]:
    return ["print"]


def streamed_float_labels() -> tuple[Any, Any]:
    """Binary labels as floats (0.0 / 1.0), as many tf.data pipelines carry them."""
    import tensorflow as tf
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    y = y.astype("float32")
    return (tf.data.Dataset.from_tensor_slices((x[:450], y[:450])),
            tf.data.Dataset.from_tensor_slices((x[450:], y[450:])))


def messy_table() -> tuple[Any, Any]:
    """A pandas DataFrame as `x` (text, true/false and missing cells), labels as text: a table, as a CSV is."""
    from tests.messy_table import messy_frame

    frame = messy_frame(rows=300)
    return frame.drop(columns=["label"]), frame["label"].to_numpy()
