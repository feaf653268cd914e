"""Data a user's function streams as `tf.data.Dataset`s: training and validation data bigger than memory.

`data: package.module:function` may return `{"train": ds, "validation": ds}` (optionally with
`"features"`, the column names) or a `(train, validation)` pair of datasets of `(x, y)` examples,
batched or not. One pass over each, before training, learns what arrays give at once: the input
shape, the input scaling (per-feature mean and spread for rows, the maximum for images), the labels
and their checks (the same as a file's, on the labels alone), and the target's mean and spread for
regression. Training then streams: kerasweep batches the examples with the trial's `batch_size`,
shuffles a bounded buffer and maps labels to what the task trains on inside the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

SAMPLE = 256  # raw examples kept in memory: shapes, the model's measures, the registered input example
SHUFFLE_BUFFER = 10_000


def returned_streams(returned: Any) -> tuple[Any, Any, Any] | None:
    """(train, validation, features) when a data function returned datasets; None for arrays."""
    import sys

    if "tensorflow" not in sys.modules:  # no TensorFlow imported: the function cannot have made datasets
        return None
    import tensorflow as tf

    if isinstance(returned, Mapping) and {"train", "validation"} <= set(returned):
        train, validation, features = returned["train"], returned["validation"], returned.get("features")
    elif isinstance(returned, (tuple, list)) and len(returned) == 2:
        (train, validation), features = returned, None
    else:
        return None
    if not all(isinstance(ds, tf.data.Dataset) for ds in (train, validation)):
        return None
    return train, validation, features


def pipelines(data: Any, batch_size: int, seed: int, one_hot: bool, shuffle: bool = True) -> tuple[Any, Any]:
    """The training and validation pipelines of a streamed Dataset for one trial."""
    import tensorflow as tf

    train, validation, lookup = data.streams
    label = _label_map(lookup, data.task, data.n_classes, one_hot)
    if shuffle:
        train = train.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    train = train.map(label)
    validation = validation.map(label)
    return (ds.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE) for ds in (train, validation))


def _label_map(lookup: tuple[Any, ...] | None, task: str, n_classes: int, one_hot: bool) -> Any:
    """Raw labels to what the task trains on: class indices (binary: 0/1 floats) through a lookup table,
    floats for regression and multilabel; x as float32."""
    import tensorflow as tf

    table = None
    if lookup is not None:
        text = isinstance(lookup[0], str)  # else numbers, whole ones (fractional labels are refused earlier)
        keys = tf.constant(list(lookup), tf.string) if text else tf.constant([int(k) for k in lookup], tf.int64)
        table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, tf.range(len(lookup), dtype=tf.int64)),
                                          default_value=-1)

    def label(x: Any, y: Any) -> tuple[Any, Any]:
        x = tf.cast(x, tf.float32)
        if table is None:
            return x, tf.cast(y, tf.float32)
        raw = tf.argmax(y) if y.shape.rank == 1 else y  # one-hot rows name their class by position
        index = table.lookup(tf.cast(raw, table.key_dtype))
        if task == "binary":
            return x, tf.cast(index, tf.float32)
        return x, tf.one_hot(index, n_classes) if one_hot else tf.cast(index, tf.int32)

    return label


def examples(ref: str, ds: Any) -> Any:
    """Single `(x, y)` examples, whether the user batched the dataset or not (ValueError naming `ref`
    for other elements)."""
    spec = ds.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2):
        raise ValueError(f"{ref}: the datasets must yield (x, y) pairs; got elements {spec}")
    x_spec = spec[0]
    if x_spec.shape.rank is not None and x_spec.shape.rank >= 2 and x_spec.shape[0] is None:
        return ds.unbatch()  # batched by the user: kerasweep batches with each trial's batch_size
    return ds


def scan(ref: str, ds: Any, want_stats: bool) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One streaming pass: the first SAMPLE inputs, every label, and the inputs' running statistics
    (mean, std, peak); ValueError naming `ref` for inputs that cannot train."""
    first: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    count, total, squares, peak = 0, 0.0, 0.0, 0.0
    for x, y in ds.batch(1024).as_numpy_iterator():
        x = np.asarray(x, dtype="float64")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{ref}: features hold NaN or infinite values; clean or impute them first")
        if sum(len(f) for f in first) < SAMPLE:
            first.append(x[:SAMPLE].astype("float32"))
        labels.append(np.asarray(y))
        if want_stats:
            count += len(x)
            total = total + x.sum(axis=0)
            squares = squares + np.square(x).sum(axis=0)
            peak = max(peak, float(x.max()))
    if not labels:
        raise ValueError(f"{ref}: a dataset is empty; expected (x, y) examples in both training and validation")
    stats: dict[str, Any] = {}
    if want_stats:
        mean = total / count
        stats = {"mean": mean, "std": np.sqrt(np.maximum(squares / count - np.square(mean), 0.0)), "peak": peak}
    y = np.concatenate(labels)
    if y.dtype == object:  # text labels come out of TensorFlow as bytes
        y = np.array([v.decode() if isinstance(v, bytes) else v for v in y.ravel()]).reshape(y.shape)
    return np.concatenate(first)[:SAMPLE], y, stats
