"""Datasets by name or path, split once per process (scaling fitted, not applied), served in batches.

`load_arrays` needs only NumPy and scikit-learn, so a sweep can check a data file (shape, labels,
non-numeric columns) before it starts any compute. `make_pipeline` turns the cached arrays into batches
per trial (batch size is a searched param): `tf.data` on TensorFlow, a Keras `PyDataset` on JAX and PyTorch.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerasweep.trainers import catalog
from kerasweep.trainers.raw_columns import ColumnError, ColumnPlan, fit_plan, infer_roles

IMAGE_FOLDER_SIZE = (32, 32)  # images from a class-per-folder tree are resized to this (HxW)


class DataError(ValueError):
    """The data cannot be used for training; the message says which file and what is wrong."""


@dataclass(frozen=True)
class Dataset:
    """A deterministic train/validation split of raw inputs with integer class labels, and the input
    scaling fitted on the train part. The scaling is applied inside the model (`trainers.fit`), so a
    checkpoint, an export and a registered model all answer raw inputs as the trial saw them."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: tuple[Any, ...]
    mean: np.ndarray | None = None  # tabular: per-feature standardisation (std of a constant feature is 1)
    std: np.ndarray | None = None
    peak: float | None = None  # images: divided by the train maximum
    task: str = "classification"
    y_mean: np.ndarray | None = None  # regression: the model answers in the target's units (see trainers.fit)
    y_std: np.ndarray | None = None
    features: tuple[str, ...] | None = None  # tabular: the feature columns' names, as the user's rows have them
    # a data function's tf.data datasets (trainers.streams): they train, and x_*/y_* hold their first examples
    streams: tuple[Any, Any, Any] | None = None
    label_counts: tuple[int, ...] | None = None  # streams: examples per class in the training part
    # a table (CSV, DataFrame): each raw column's role and what training taught it; x_* are its encoding
    plan: ColumnPlan | None = None
    raw_val: Any = field(default=None, compare=False, repr=False)  # a table's raw validation rows (a DataFrame)
    dropped_rows: int = 0  # rows left out because their target was missing
    notices: tuple[str, ...] = ()  # what a person should know about the data before trusting a result
    # a forecast: its windows' plan, the rows on the time grid, counts and the naive forecasts (trainers.forecast)
    series: Any = field(default=None, compare=False, repr=False)

    def class_counts(self) -> tuple[int, ...]:
        """Training examples per class (classification, binary), in the order of `classes`."""
        if self.label_counts is not None:
            return self.label_counts
        return tuple(np.bincount(np.asarray(self.y_train).astype(int), minlength=len(self.classes)).tolist())

    def scaled(self) -> tuple[np.ndarray, np.ndarray]:
        """(x_train, x_val) as the model's first layer scales them: for code that trains its own model."""
        if self.streams is not None:
            raise ValueError(f"{self.name}: streamed data has no arrays to scale; map the datasets instead")
        if self.mean is not None:
            return (self.x_train - self.mean) / self.std, (self.x_val - self.mean) / self.std
        return self.x_train / self.peak, self.x_val / self.peak

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_outputs(self) -> int:
        """Width of the model's output: one per class, one for binary, one per label or target column."""
        if self.task == "classification":
            return self.n_classes
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[1])


REGRESSION_HINT_DISTINCT = 20  # more distinct numeric labels than this, and few rows each: a quantity, not classes


@functools.lru_cache(maxsize=8)
def load_arrays(data: str, validation_split: float = 0.2, seed: int = 0, task: str = "classification",
                target: str | tuple[str, ...] = "label", validation: str | None = None,
                columns: tuple[tuple[str, str], ...] = (), forecast: tuple[tuple[str, Any], ...] = (),
                split: str = "random") -> Dataset:
    """Load `data` (bundled name or path) for `task`, split it by `seed` (stratified for classes), and
    fit the input scaling on the train part only. `target` names the CSV label column(s); `validation`,
    a file of the same kind, is the validation part instead of a split; `columns`, a table's role
    overrides (`trainers.raw_columns`); `forecast`, a forecast's options and its lookback (`trainers.forecast`);
    `split`, "ordered" to keep the rows' order and validate on the last ones (rows that follow time).
    Rows whose target is missing are left out and counted.

    Cached per process: every trial of a worker reuses the same arrays.
    """
    if task not in catalog.TASKS:
        raise DataError(f"{data}: unknown task {task!r}; expected one of {', '.join(catalog.TASKS)}")
    targets = (target,) if isinstance(target, str) else tuple(target)
    if task == "forecast":
        return _from_series(data, validation_split, targets, validation, dict(forecast))
    if catalog.is_data_function(data):
        from kerasweep.trainers.streams import returned_streams

        returned = _call_function(data)
        streamed = returned_streams(returned)
        if streamed is not None:
            if validation is not None:
                raise DataError(f"{data}: the function returns its own validation dataset; remove validation:")
            return _from_streams(data, *streamed, task)
        x, y, names, features = _function_arrays(data, returned)
    else:
        x, y, names, features = _read(data, targets)
    x, y, dropped = _without_missing_targets(data, x, y)
    if _is_table(x):
        return _from_table(data, x, y, task, names, validation_split, seed, targets, validation, dict(columns),
                           dropped, split == "ordered")
    if columns:
        raise DataError(f"{data}: columns: only a table (a CSV, or a DataFrame from a data function) has named "
                        "columns; remove columns:")
    x = _check_features(data, x, y, features)
    if validation is not None:
        x_train, x_val, y_train, y_val, classes = _with_validation_file(data, validation, x, y, task, targets,
                                                                        names, features)
    else:
        y, classes, strata = _encode_labels(data, y, task, names)
        x_train, x_val, y_train, y_val = _split(data, (x, y), validation_split, seed, strata, split == "ordered")
    extra = _target_scaling(y_train) if task == "regression" else {}
    if x.ndim == 2:  # rows of named columns (files without names get x0, x1, ...)
        extra["features"] = tuple(features or (f"x{i}" for i in range(x.shape[1])))
    return Dataset(data, x_train, y_train, x_val, y_val, classes, **_scaling(x_train), task=task,
                   dropped_rows=dropped, **extra)


def _from_series(data: str, validation_split: float, targets: tuple[str, ...], validation: str | None,
                 options: dict[str, Any]) -> Dataset:
    """A forecast's windows, split in time (`trainers.forecast`); the model answers in the target's units."""
    from kerasweep.trainers.forecast import ForecastOptions, make_windows, read_frame
    from kerasweep.trainers.series_plan import SeriesError

    lookback = int(options.pop("lookback"))
    try:
        frame = read_frame(_call_function(data) if catalog.is_data_function(data) else Path(data), data)
        later = read_frame(Path(validation), validation) if validation is not None else None
        windows = make_windows(data, frame, targets, ForecastOptions.of(options), lookback, validation_split, later)
    except (SeriesError, TypeError) as exc:
        raise DataError(str(exc)) from None
    names = tuple(f"{t}+{h}" for h in range(1, windows.plan.horizon + 1) for t in targets)  # step-major outputs
    return Dataset(data, windows.x_train, windows.y_train, windows.x_val, windows.y_val, names,
                   **_scaling(windows.x_train), task="forecast", **_target_scaling(windows.y_train),
                   notices=tuple(windows.notices()), series=windows)


def _split(data: str, arrays: tuple[Any, ...], validation_split: float, seed: int,
           strata: np.ndarray | None, ordered: bool = False) -> list[Any]:
    """train_test_split of every array (or DataFrame) alike; a split it cannot make is a DataError.
    `ordered`: the rows keep their order and the last `validation_split` of them validate."""
    from sklearn.model_selection import train_test_split

    if ordered:
        count = len(arrays[0])
        cut = count - max(1, int(round(validation_split * count)))
        if cut < 1:
            raise DataError(f"{data}: cannot split {count} row(s) in order with validation_split={validation_split}")
        return [part for a in arrays for part in ((a.iloc[:cut], a.iloc[cut:]) if hasattr(a, "iloc") else (a[:cut], a[cut:]))]

    try:
        return train_test_split(*arrays, test_size=validation_split, random_state=seed, stratify=strata)
    except ValueError as exc:
        raise DataError(f"{data}: cannot split with validation_split={validation_split}: {exc}") from None


def _is_table(x: Any) -> bool:
    import pandas as pd

    return isinstance(x, pd.DataFrame)


def _without_missing_targets(data: str, x: Any, y: Any) -> tuple[Any, np.ndarray, int]:
    """Rows whose target (any target column) is missing are left out; returns them counted, never silently."""
    import pandas as pd

    y = np.asarray(y)
    if len(y) != len(x) or len(y) == 0:
        return x, y, 0  # _check_features names the mismatch, or that there are no rows
    missing = pd.isna(pd.DataFrame(y.reshape(len(y), -1))).any(axis=1).to_numpy().copy()
    if y.dtype == object:
        missing |= np.array([isinstance(v, str) and not v.strip() for v in y.reshape(len(y), -1)[:, 0]])
    if not missing.any():
        return x, y, 0
    if missing.all():
        raise DataError(f"{data}: every row's target is missing; name the label column(s) with target:")
    keep = ~missing
    kept = x[keep] if _is_table(x) else np.asarray(x)[keep]
    if _is_table(kept):
        kept = kept.reset_index(drop=True)
    labels = y[keep]
    if labels.dtype == object and all(isinstance(v, (int, float, np.number)) for v in labels.ravel()):
        labels = labels.astype("float64")
    return kept, labels, int(missing.sum())


def _from_table(data: str, frame: Any, y: np.ndarray, task: str, names: tuple[str, ...] | None,
                validation_split: float, seed: int, targets: tuple[str, ...], validation: str | None,
                columns: dict[str, str], dropped: int, ordered: bool = False) -> Dataset:
    """A table's columns get roles (`trainers.raw_columns`), the rows are split, the plan is fitted on the
    training rows only and encodes both parts; the model then scales what the plan gives."""
    if len(frame) == 0:
        raise DataError(f"{data}: no examples; expected at least one row per class")
    try:
        roles = infer_roles(frame, columns)
    except ColumnError as exc:
        raise DataError(f"{data}: {exc}") from None
    if all(role in ("identifier", "ignore") for role, _ in roles.values()):
        shown = "; ".join(f"{role}: {name}" for name, (role, _) in roles.items())
        raise DataError(f"{data}: no feature column is left ({shown}); set a column's role with columns: "
                        "{name: numeric} in the space file")
    if validation is not None:
        val_frame, y_val_raw, _, _ = _read(validation, targets)
        if not _is_table(val_frame):
            raise DataError(f"{validation}: the validation file must be a table of the same columns as {data}")
        val_frame, y_val_raw, _ = _without_missing_targets(validation, val_frame, y_val_raw)
        absent = [c for c in frame.columns if c not in val_frame.columns and roles[str(c)][0] not in ("identifier",
                                                                                                      "ignore")]
        if absent:
            raise DataError(f"{validation}: lacks column(s) {', '.join(map(str, absent))} that {data} has; the "
                            "validation file must hold the same columns")
        train_frame = frame
        y_train, y_val, classes = _encode_both(data, y, y_val_raw, task, names, validation, data)
    else:
        encoded, classes, strata = _encode_labels(data, y, task, names)
        train_frame, val_frame, y_train, y_val = _split(data, (frame, encoded), validation_split, seed, strata,
                                                        ordered)
    plan = fit_plan(train_frame, roles)
    try:
        x_train, x_val = plan.encode(train_frame), plan.encode(val_frame)
    except ColumnError as exc:
        raise DataError(f"{data}: {exc}") from None
    extra = _target_scaling(y_train) if task == "regression" else {}
    return Dataset(data, x_train, y_train, x_val, y_val, classes, **_scaling(x_train), task=task,
                   features=tuple(plan.used), plan=plan, raw_val=val_frame.reset_index(drop=True),
                   dropped_rows=dropped, notices=tuple(plan.notices(frame)), **extra)


def _from_streams(ref: str, train: Any, validation: Any, features: Any, task: str) -> Dataset:
    """A Dataset over a data function's tf.data datasets (`trainers.streams`): its arrays hold the first
    examples only, its `streams` train; DataError where the examples do not fit the task."""
    from kerasweep.trainers.streams import examples, scan

    try:
        train, validation = (examples(ref, ds) for ds in (train, validation))
        x_first, y_train, stats = scan(ref, train, want_stats=True)
        x_val_first, y_val, _ = scan(ref, validation, want_stats=False)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if x_first.shape[1:] != x_val_first.shape[1:]:
        raise DataError(f"{ref}: validation examples have shape {x_val_first.shape[1:]}, training examples "
                        f"{x_first.shape[1:]}; both datasets must hold the same features")
    _check_features(ref, x_first, y_train[:len(x_first)])
    encoded_train, encoded_val, classes = _encode_both(ref, y_train, y_val, task, None, f"{ref} (validation)",
                                                       "the training data")
    extra = _target_scaling(encoded_train) if task == "regression" else {}
    if x_first.ndim == 2:
        extra["features"] = tuple(map(str, features)) if features is not None else tuple(
            f"x{i}" for i in range(x_first.shape[1]))
        scaling = _standardize(stats["mean"], stats["std"])
    else:
        scaling = {"peak": stats["peak"] or 1.0}
    lookup = None if task in ("regression", "multilabel") else tuple(classes)
    if lookup is not None:
        extra["label_counts"] = tuple(np.bincount(encoded_train.astype(int), minlength=len(classes)).tolist())
    return Dataset(ref, x_first, encoded_train[:len(x_first)], x_val_first, encoded_val[:len(x_val_first)], classes,
                   **scaling, task=task, streams=(train, validation, lookup), **extra)


def _with_validation_file(data: str, validation: str, x: np.ndarray, y: np.ndarray, task: str,
                          targets: tuple[str, ...], names: tuple[str, ...] | None,
                          features: tuple[str, ...] | None) -> tuple[Any, ...]:
    """The user's own validation file: same kind, same columns, labels encoded with the training data's."""
    x_val, y_val, _, val_features = _read(validation, targets)
    x_val, y_val, _ = _without_missing_targets(validation, x_val, y_val)
    x_val = _check_features(validation, x_val, y_val, val_features)
    if x_val.shape[1:] != x.shape[1:]:
        raise DataError(f"{validation}: features have shape {x_val.shape[1:]} per example, but {data} has "
                        f"{x.shape[1:]}; the validation file must hold the same columns")
    if features and val_features and list(val_features) != list(features):
        raise DataError(f"{validation}: feature columns {', '.join(val_features)} differ from {data}'s "
                        f"{', '.join(features)}; the validation file must hold the same columns, in order")
    y_train, y_valid, classes = _encode_both(data, y, y_val, task, names, validation, data)
    return x, x_val, y_train, y_valid, classes


def _encode_both(data: str, y_train: Any, y_val: Any, task: str, names: tuple[str, ...] | None, where: str,
                 training: str) -> tuple[np.ndarray, np.ndarray, tuple[Any, ...]]:
    """Training and validation labels encoded together (one set of classes), and a class that only the
    validation part (`where`) holds refused: a model cannot learn it from `training`."""
    y_all, classes, _ = _encode_labels(data, np.concatenate([np.asarray(y_train), np.asarray(y_val)]), task, names)
    encoded_train, encoded_val = y_all[:len(y_train)], y_all[len(y_train):]
    if task in ("classification", "binary"):
        unseen = sorted({classes[int(i)] for i in set(np.asarray(encoded_val).astype(int).tolist())
                         - set(np.asarray(encoded_train).astype(int).tolist())}, key=str)
        if unseen:
            raise DataError(f"{where}: classes {', '.join(map(str, unseen))} do not occur in {training}; a model "
                            "cannot learn them")
    return encoded_train, encoded_val, classes


def make_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0,
                  shards: int = 1) -> Any:
    """Batches for `model.fit`: a `tf.data` pipeline (cache, shuffle for training, batch, prefetch) on the
    TensorFlow backend, a `keras.utils.PyDataset` of the same batches on JAX and PyTorch, which need no
    TensorFlow installed. `shards` > 1, a trial across that many devices: `batch_size` must split evenly over
    them (Keras on TensorFlow fails on a 7-row batch over 2 replicas; JAX cannot split it)."""
    from kerasweep.trainers import backend

    if backend.name() != "tensorflow":
        return array_batches(x, y, int(batch_size), shuffle, seed, shards)
    import tensorflow as tf

    _check_split(int(batch_size), shards)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)  # MirroredStrategy splits uneven batches itself


def array_batches(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int, shards: int = 1) -> Any:
    """Arrays served in batches, reshuffled each epoch from `seed` (as the tf.data pipeline does).

    `shards` > 1 (JAX's DataParallel, which splits each batch over its devices and cannot split unevenly):
    training drops the last partial batch (fewer than `batch_size` rows, other ones each epoch); such a trial
    validates on one device (`fit.undistributed_validation`), on every row.
    """
    import keras

    _check_split(batch_size, shards)
    if shards > 1 and len(x) < batch_size:
        raise ValueError(f"batch_size: {batch_size} is more than the {len(x)} training rows; on {shards} devices "
                         "a batch must be whole; search smaller batch sizes")
    whole_batches_only = shards > 1

    class _ArrayBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.order, self.epoch = np.arange(len(x)), 0
            self.on_epoch_end()

        def __len__(self) -> int:
            return len(x) // batch_size if whole_batches_only else math.ceil(len(x) / batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = self.order[index * batch_size:(index + 1) * batch_size]
            return x[rows], y[rows]

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = np.random.default_rng([seed, self.epoch]).permutation(len(x))
                self.epoch += 1

    return _ArrayBatches()


def _check_split(batch_size: int, shards: int) -> None:
    if batch_size % shards:
        raise ValueError(f"batch_size: {batch_size} does not split evenly over the {shards} devices this trial "
                         f"trains on (one batch, split per device); search batch sizes that are multiples of {shards}")


def _read(data: str, target: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None,
                                                     tuple[str, ...] | None]:
    """Features, labels, the names of several target columns, and the feature columns' names."""
    if catalog.is_data_function(data):
        return _function_arrays(data, _call_function(data))
    if data in catalog.BUNDLED_DATASETS:
        import sklearn.datasets

        kind = catalog.BUNDLED_DATASETS[data]
        bunch = getattr(sklearn.datasets, f"load_{data}")(**({"scaled": False} if data == "diabetes" else {}))
        if kind == "image":
            return bunch.images[..., np.newaxis].astype("float32"), bunch.target, None, None
        return bunch.data.astype("float32"), bunch.target, None, tuple(map(str, bunch.feature_names))
    path = Path(data)
    if not path.exists():
        raise DataError(f"{data}: no such file or folder; pass a bundled name ({', '.join(catalog.BUNDLED_DATASETS)}) or an existing path")
    if not path.is_dir() and not path.is_file():  # a FIFO or a device would hang the read, before any output
        raise DataError(f"{data}: not a regular file or folder; point data: at a saved file")
    if path.is_dir():
        return (*_read_image_folder(path), None, None)
    if path.suffix == ".npz":
        return (*_read_npz(path), None, None)
    if path.suffix == ".csv":
        return _read_csv(path, target)
    raise DataError(f"{data}: unsupported suffix {path.suffix!r}; expected .npz, .csv or a folder of images per class")


def _call_function(ref: str) -> Any:
    """What a user's data function (`package.module:function`, no arguments) returns, imported from the
    project folder as a builder is."""
    from kerasweep.trainers.user_code import import_object

    try:
        function = import_object(ref)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"{ref}: cannot load the data function ({exc}); name a function as package.module:function "
                        "importable from the project folder") from None
    return function()


def _function_arrays(ref: str, returned: Any) -> tuple[np.ndarray, np.ndarray, None, tuple[str, ...] | None]:
    """Arrays from a data function's `(x, y)` or mapping with `x`, `y` and optionally `features` (the
    column names of 2-D `x`); datasets are `trainers.streams`'. Checked after as a file's arrays are."""
    features = None
    if isinstance(returned, dict) and {"x", "y"} <= set(returned):
        x, y, features = returned["x"], returned["y"], returned.get("features")
    elif isinstance(returned, (tuple, list)) and len(returned) == 2:
        x, y = returned
    else:
        raise DataError(f"{ref}: the function returned {type(returned).__name__}; expected (x, y), a mapping with "
                        "'x', 'y' and optionally 'features', or tf.data datasets {'train': ..., 'validation': ...}")
    import pandas as pd

    if isinstance(x, pd.DataFrame):  # a table: its columns get roles as a CSV's do
        return x.reset_index(drop=True), np.asarray(y), None, tuple(map(str, x.columns))
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype == object or y.dtype == object and not all(isinstance(v, str) or v is None for v in y.ravel()):
        raise DataError(f"{ref}: x must hold numbers (or be a pandas DataFrame) and y numbers or text; got {x.dtype} "
                        f"and {y.dtype}")
    return x, y, None, tuple(map(str, features)) if features is not None else None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        arrays = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    missing = {"x", "y"} - set(arrays.files)
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(sorted(missing))}; expected arrays 'x' (features) and 'y' (labels), found {arrays.files}")
    try:
        x, y = arrays["x"], arrays["y"]
    except ValueError as exc:  # object arrays (pickled Python objects) are refused: loading them runs code
        raise DataError(f"{path}: {exc}; save plain numeric arrays (x as numbers, y as numbers or strings)") from None
    return x, y  # (n, a, b): sequences of steps (a grayscale image's rows to an rnn; the cnn adds a channel)


def _read_csv(path: Path, target: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None,
                                                           tuple[str, ...]]:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    missing = [name for name in target if name not in frame.columns]
    if missing:
        raise DataError(f"{path}: no target column {', '.join(map(repr, missing))}; name the label column(s) with "
                        f"`target:` in the space file; the file has {', '.join(map(str, frame.columns))}")
    features = frame.drop(columns=list(target))
    labels = frame[target[0]].to_numpy() if len(target) == 1 else frame[list(target)].to_numpy()
    return features, labels, target if len(target) > 1 else None, tuple(map(str, features.columns))


def _read_image_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images, labels = [], []
    class_dirs = sorted(p for p in path.iterdir() if p.is_dir())
    for class_dir in class_dirs:
        for file in sorted(class_dir.iterdir()):
            if not file.is_file():  # a FIFO would hang the read; sub-folders are not images either
                continue
            try:
                with Image.open(file) as img:
                    images.append(np.asarray(img.convert("RGB").resize(IMAGE_FOLDER_SIZE), dtype="float32"))
            except Exception:  # noqa: BLE001 - skip non-images (README, .DS_Store) quietly
                continue
            labels.append(class_dir.name)
    if not images:
        raise DataError(f"{path}: no images found; expected one sub-folder per class holding image files")
    return np.stack(images), np.asarray(labels)


def _check_features(data: str, x: np.ndarray, y: np.ndarray, features: tuple[str, ...] | None = None) -> np.ndarray:
    if len(x) == 0:
        raise DataError(f"{data}: no examples; expected at least one row per class")
    if x.ndim not in (2, 3, 4):
        raise DataError(f"{data}: features have shape {x.shape}; expected (n, features), (n, steps, features) or "
                        "(n, height, width[, channels])")
    y = np.asarray(y)
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise DataError(f"{data}: labels have shape {y.shape}; expected ({len(x)},) or ({len(x)}, columns), one row per example")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{data}: features are {x.dtype}, not numbers; encode them as numbers first")
    x = x.astype("float32")
    finite = np.isfinite(x)
    if not finite.all():
        rows = int((~finite).reshape(len(x), -1).any(axis=1).sum())
        where = ""
        if x.ndim == 2:
            bad = np.flatnonzero((~finite).any(axis=0))
            names = [features[i] if features else f"x{i}" for i in bad[:5]]
            where = f" in column(s) {', '.join(names)}{' and more' if len(bad) > 5 else ''}"
        raise DataError(f"{data}: features hold NaN or infinite values{where}, {rows} of {len(x)} rows; arrays must be "
                        "complete: save the table as a CSV (kerasweep imputes missing cells there) or impute them first")
    return x


def _encode_labels(data: str, y: np.ndarray, task: str,
                   names: tuple[str, ...] | None) -> tuple[np.ndarray, tuple[Any, ...], np.ndarray | None]:
    """Labels as the task trains on them, the class names (or label/target names), and the strata."""
    y = np.asarray(y)
    if y.dtype == object and task in ("classification", "binary"):  # text, or text mixed with numbers: names
        y = y.astype(str)
    numeric = np.issubdtype(y.dtype, np.number) or y.dtype == bool
    if task == "regression":
        if not numeric:
            raise DataError(f"{data}: regression targets must be numbers, got {y.dtype} values such as {y.flat[0]!r}; "
                            "for named classes set task: classification")
        y = y.astype("float32")
        if not np.all(np.isfinite(y)):
            raise DataError(f"{data}: targets hold NaN or infinite values; drop or impute those rows first")
        return y, names or ("target",), None
    if task == "multilabel":
        if y.ndim != 2 or not numeric or not np.isin(y, (0, 1)).all():
            raise DataError(f"{data}: multilabel needs one 0/1 column per label (shape (n, labels)), got shape "
                            f"{y.shape}; name the label columns with target: [a, b, ...]")
        return y.astype("float32"), names or tuple(range(y.shape[1])), None
    if y.ndim == 2:  # one-hot rows
        if not numeric or not np.isin(y, (0, 1)).all() or not (y.sum(axis=1) == 1).all():
            raise DataError(f"{data}: two-dimensional labels must be one-hot rows (a single 1 per row), got shape {y.shape}; "
                            "for several yes/no labels per example set task: multilabel")
        y = y.argmax(axis=1)
    if numeric and np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        raise DataError(f"{data}: labels are fractional numbers, not classes; if they are quantities set task: regression")
    classes, index = np.unique(y, return_inverse=True)
    counts = np.bincount(index)
    if len(classes) < 2:
        raise DataError(f"{data}: found {len(classes)} class; expected at least 2 classes")
    if numeric and len(classes) > REGRESSION_HINT_DISTINCT and counts.mean() < 10:
        raise DataError(f"{data}: {len(classes)} distinct numeric labels over {len(y)} rows looks like a regression "
                        "target, not classes; set task: regression (or encode the classes as text)")
    if counts.min() < 2:
        hint = "; if the labels are quantities, set task: regression" if numeric else ""
        raise DataError(f"{data}: every class needs at least 2 examples to split train/validation, found a class "
                        f"with {int(counts.min())}{hint}")
    if task == "binary":
        if len(classes) != 2:
            raise DataError(f"{data}: binary needs exactly 2 classes, found {len(classes)}; set task: classification")
        return index.astype("float32"), tuple(classes.tolist()), index
    return index.astype("int32"), tuple(classes.tolist()), index


def _scaling(x_train: np.ndarray) -> dict[str, Any]:
    """Standardise per feature (tables; sequences per feature over all steps) or divide by the maximum
    (images, four axes), fitted on the train part only."""
    if x_train.ndim in (2, 3):
        axes = tuple(range(x_train.ndim - 1))
        return _standardize(x_train.mean(axis=axes), x_train.std(axis=axes))
    return {"peak": float(x_train.max()) or 1.0}


def _standardize(mean: np.ndarray, std: np.ndarray) -> dict[str, Any]:
    """Per-feature mean and spread as the model's first layer takes them (a constant feature's spread is 1)."""
    return {"mean": np.asarray(mean).astype("float32"), "std": np.where(std == 0, 1.0, std).astype("float32")}


def _target_scaling(y_train: np.ndarray) -> dict[str, Any]:
    """Regression: the training targets' mean and spread, with which the model answers in their units."""
    std = y_train.std(axis=0)
    return {"y_mean": np.atleast_1d(y_train.mean(axis=0)).astype("float32"),
            "y_std": np.atleast_1d(np.where(std == 0, 1.0, std)).astype("float32")}
