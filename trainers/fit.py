"""The one training loop: sweep trials and production training both call `train`.

It knows nothing of search engines or tracking: an engine reaches it only through the Keras callbacks
it hands in (a reporter that prunes, a logger that records metrics). Usable alone:

    from kerasweep.trainers.fit import TrainSpec, train
    result = train(TrainSpec(model="cnn", data="digits", params={"learning_rate": 1e-3}, epochs=10))
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerasweep.trainers import catalog
from kerasweep.trainers.suggest import Suggestions, builder_style

TRAINING_DEFAULTS = {
    "learning_rate": 1e-3,  # Adam's own default: a safe start
    "optimizer": "adam",
    "momentum": 0.0,
    "nesterov": False,
    "weight_decay": 0.004,  # AdamW's Keras default
    "clipnorm": 0.0,  # off: clipping only helps when gradients explode
    "batch_size": 64,  # small data here; keeps steps per epoch meaningful
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "decay_rate": 0.5,  # halve per step (step) or shrink gently per epoch (exponential: set ~0.9)
    "step_epochs": 5,
    "plateau_factor": 0.5,  # Keras ReduceLROnPlateau's usual choice
    "plateau_patience": 2,
    "patience": 5,  # EarlyStopping: epochs without improvement before a trial ends itself
    "min_delta": 0.0,
    "mixed_precision": None,  # None: mixed_float16 for big models on a GPU only (trainers.backend.precision)
    "loss": None,  # None: the task's (mean squared error for regression)
    "lookback": 16,  # forecast: the samples of history each window reads
}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the model is useless and training stopped at once."""


@dataclass(frozen=True)
class TrainSpec:
    """Everything needed to train one model; an exported config is exactly this plus provenance."""

    model: str
    data: str
    params: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 10
    seed: int = 0
    validation_split: float = 0.2
    monitor: str = "val_accuracy"  # the metric that picks the best epoch
    direction: str = "maximize"
    task: str = "classification"  # decides loss, output head, metrics and split (catalog.TASKS)
    target: str | tuple[str, ...] = "label"  # the CSV label column(s)
    validation: str | None = None  # a file used as the validation part instead of `validation_split`
    code: str | None = None  # the folder the user's `module:function` imports from (trainers.user_code)
    fit: Mapping[str, Any] = field(default_factory=dict)  # Keras fit arguments: class_weight, shuffle
    callbacks: str | None = None  # the user's `module:function` returning a list of Keras callbacks
    columns: Mapping[str, str] = field(default_factory=dict)  # a table's column roles set by hand (raw_columns.ROLES)
    forecast: Mapping[str, Any] = field(default_factory=dict)  # task forecast: time, horizon, ... (trainers.forecast)
    split: str = "random"  # how validation rows are chosen: random (stratified for classes) or ordered (the last)


@dataclass
class TrainResult:
    """What a run produced: per-epoch history, the best epoch and its value, and the best model."""

    history: dict[str, list[float]]  # the epochs this call trained
    best_epoch: int  # 0-based index into `history`
    best_value: float
    model: Any  # what is saved and served: input scaling + network (see with_input_scaling)
    epochs_run: int
    measures: dict[str, float] = field(default_factory=dict)  # catalog.MEASURES of the saved model
    backend: str = "tensorflow"  # the Keras backend it trained on (trainers.backend.BACKENDS)
    precision: str = "float32"  # the dtype policy it trained under: float32 or mixed_float16
    devices: int = 1  # how many devices it trained across (several GPUs: MirroredStrategy, DataParallel)

    @property
    def network(self) -> Any:
        """The builder's own model inside `model`, between the input scaling and (regression) the units."""
        return inner_network(self.model)


def inner_network(model: Any) -> Any:
    """The builder's network inside a model made by `with_input_scaling` (a saved one too)."""
    import keras

    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


_gpus: int | None = None  # what configure_runtime found: the GPUs this process trains on


def configure_runtime(parallel_trials: int = 1, threads: int | None = None) -> int:
    """Set up the Keras backend once per process, before the first op (`trainers.backend.configure`);
    returns the GPUs it sees."""
    global _gpus
    if _gpus is None:
        from kerasweep.trainers import backend

        _gpus = backend.configure(parallel_trials, threads)
    return _gpus


def make_optimizer(values: Mapping[str, Any]) -> Any:
    """An optimizer by name with its learning rate and the extras that name takes."""
    import keras

    name = values["optimizer"]
    if name not in catalog.OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(catalog.OPTIMIZERS)}")
    kwargs: dict[str, Any] = {"learning_rate": float(values["learning_rate"])}
    if name in ("sgd", "rmsprop"):
        kwargs["momentum"] = float(values.get("momentum", 0.0))
    if name == "sgd":
        kwargs["nesterov"] = bool(values.get("nesterov", False))
    if name == "adamw":
        kwargs["weight_decay"] = float(values.get("weight_decay", TRAINING_DEFAULTS["weight_decay"]))
    if float(values.get("clipnorm") or 0) > 0:
        kwargs["clipnorm"] = float(values["clipnorm"])
    return getattr(keras.optimizers, catalog.OPTIMIZERS[name])(**kwargs)


def learning_rate_at(epoch: int, values: Mapping[str, Any], epochs: int) -> float:
    """The scheduled learning rate for a 0-based epoch: linear warm-up, then the schedule."""
    base, warmup = float(values["learning_rate"]), int(values["warmup_epochs"])
    if epoch < warmup:
        return base * (epoch + 1) / (warmup + 1)
    done, span = epoch - warmup, max(1, epochs - warmup)
    schedule = values["lr_schedule"]
    if schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * done / span))
    if schedule == "exponential":
        return base * float(values["decay_rate"]) ** done
    if schedule == "step":
        return base * float(values["decay_rate"]) ** (done // int(values["step_epochs"]))
    return base


def schedule_callbacks(values: Mapping[str, Any], epochs: int, monitor: str, mode: str) -> list[Any]:
    """Keras callbacks that apply the learning-rate schedule (none for a constant rate)."""
    import keras

    if values["lr_schedule"] == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=float(values["plateau_factor"]),
                                                  patience=int(values["plateau_patience"]), verbose=0)]
    if values["lr_schedule"] == "constant" and int(values["warmup_epochs"]) == 0:
        return []
    return [keras.callbacks.LearningRateScheduler(lambda epoch, lr: learning_rate_at(epoch, values, epochs))]


def tensorboard_callback(log_dir: str | os.PathLike[str]) -> Any:
    """Per-epoch scalars for TensorBoard, on every backend: the folders and tags of Keras' callback
    (`train/`, `validation/`, `epoch_<metric>`) written through TensorBoard's own event writer.

    Not Keras' `TensorBoard` callback: it needs TensorFlow, and it hooks every batch even when it writes
    per epoch, which makes Keras turn each step's metrics into Python numbers (a device sync per step:
    5% of a 3-epoch cnn trial here, 1.31 s against 1.24 s, median of 3 x 10 trials).
    """
    import keras
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    class EpochScalars(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.writers = {part: EventFileWriter(str(Path(log_dir) / part)) for part in ("train", "validation")}

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            for key, value in (logs or {}).items():
                part, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                summary = Summary(value=[Summary.Value(tag=f"epoch_{name}", simple_value=float(value))])
                self.writers[part].add_event(Event(wall_time=time.time(), step=epoch, summary=summary))
            for writer in self.writers.values():
                writer.flush()

        def on_train_end(self, logs: dict | None = None) -> None:
            for writer in self.writers.values():
                writer.close()

    return EpochScalars()


BACKUP_PATTERN = re.compile(r"epoch-(\d+)\.keras")


@dataclass(frozen=True)
class ResumePoint:
    """A saved model (weights and optimizer state) and the epochs it has trained: where training continues."""

    path: Path
    epoch: int


@dataclass(frozen=True)
class BackupPolicy:
    """Keep a resumable copy of a training model in `folder`, at most every `every_s` seconds (0: each epoch)."""

    folder: Path
    every_s: float = 60.0


def latest_backup(folder: str | os.PathLike[str]) -> ResumePoint | None:
    """The newest epoch backup `backup_callback` left in `folder`; None if none (or if the folder went away
    while it was read: its trial ended and removed its backups, in another process)."""
    try:
        found = [(int(m.group(1)), p) for p in Path(folder).glob("epoch-*.keras")
                 if (m := BACKUP_PATTERN.fullmatch(p.name))]
    except FileNotFoundError:
        return None
    if not found:
        return None
    epoch, path = max(found)
    return ResumePoint(path, epoch)


def backup_callback(folder: str | os.PathLike[str], every_s: float) -> Any:
    """A Keras callback that keeps a resumable copy of the model while it trains.

    At the end of an epoch, when at least `every_s` seconds passed since the last copy (0: every
    epoch), the whole model (weights and optimizer state) goes to `folder/epoch-<n>.keras`: written
    under a temporary name and renamed, so a kill at any moment leaves the previous copy whole. Keras'
    own BackupAndRestore writes weights and epoch as two files in place, which a kill can tear apart.
    """
    import keras

    folder = Path(folder)

    class EpochBackup(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.last_saved = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if time.monotonic() - self.last_saved < every_s or epoch + 1 >= self.params["epochs"]:
                return  # not due yet, or the last epoch: the trial ends now anyway
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / "partial.keras"
            self.model.save(partial)
            os.replace(partial, folder / f"epoch-{epoch + 1}.keras")
            for older in folder.glob("epoch-*.keras"):
                if older.name != f"epoch-{epoch + 1}.keras":
                    older.unlink(missing_ok=True)
            self.last_saved = time.monotonic()

    return EpochBackup()


def undistributed_validation(x_val: np.ndarray, y_val: np.ndarray, batch_size: int) -> Any:
    """Validate on one device at each epoch's end, into the epoch's `val_` logs, for a trial trained across
    several (JAX's DataParallel cannot split a last, uneven batch; padding it would count its rows in every
    metric but the weighted ones). Runs first, so the hooks after it see the epoch's validation."""
    import keras

    class UndistributedValidation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            kept = keras.distribution.distribution()
            keras.distribution.set_distribution(None)
            try:
                scores = self.model.evaluate(x_val, y_val, batch_size=batch_size, verbose=0, return_dict=True)
            finally:
                keras.distribution.set_distribution(kept)
            if logs is not None:
                logs.update({f"val_{metric}": float(value) for metric, value in scores.items()})

    return UndistributedValidation()


def _stop_on_nan() -> Any:
    import keras

    class StopOnNaN(keras.callbacks.Callback):
        """Stop at the end of the first epoch whose loss is not finite.

        Keras' TerminateOnNaN checks every batch, which forces a device sync per step (about 10% of
        a small trial here) and prints to the console; one check per epoch still stops a diverged
        trial long before its budget.
        """

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True

    return StopOnNaN()


def load_data(spec: TrainSpec) -> Any:
    """The arrays `spec` trains on (a `trainers.data.Dataset`, cached per process): its data, split or
    validation file, task and target. Training, production and the up-front data check all load this way."""
    from kerasweep.trainers.data import load_arrays
    from kerasweep.trainers.user_code import make_importable

    make_importable(spec.code)  # a data function or builder of a sweep run in another folder
    target = spec.target if isinstance(spec.target, str) else tuple(spec.target)  # hashable: the arrays are cached
    columns = tuple(sorted(dict(spec.columns).items()))
    forecast: tuple[tuple[str, Any], ...] = ()
    if spec.task == "forecast":  # the window length is a param like any other: one set of windows per value
        block = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(spec.forecast).items()}
        forecast = tuple(sorted({**block, "lookback": int(spec.params.get("lookback", TRAINING_DEFAULTS["lookback"]))}.items()))
    return load_arrays(spec.data, spec.validation_split, spec.seed, spec.task, target, spec.validation, columns,
                       forecast, spec.split)


def with_input_scaling(network: Any, data: Any) -> Any:
    """The network behind the input scaling fitted on its training split, as one Keras model.

    Production loads what a trial saved: with the scaling inside, a checkpoint, an export and a
    registered model answer raw inputs exactly as the trial did (kept outside, a model scored 0.77 on
    raw rows where its trial had 0.94). The layers compute in float32 under mixed precision too.
    """
    import keras

    inputs = keras.Input(shape=data.input_shape, name="raw_input")
    if data.mean is not None:
        scaling = keras.layers.Normalization(mean=data.mean, variance=np.square(data.std), name="standardize",
                                             dtype="float32")
    else:
        scaling = keras.layers.Rescaling(1.0 / data.peak, name="rescale", dtype="float32")
    outputs = network(scaling(inputs))
    if data.y_mean is not None:  # regression: the network learns standardised targets, the model answers in units
        outputs = keras.layers.Normalization(mean=data.y_mean, variance=np.square(data.y_std), invert=True,
                                             name="to_target_units", dtype="float32")(outputs)
    return keras.Model(inputs, outputs, name=f"{network.name}_on_raw_inputs")


#: Metrics kerasweep implements itself (`trainers.metrics`): compiled only when the objective names them, since
#: a model saved with them loads elsewhere only after `import kerasweep.trainers.metrics` (the served model
#: loads uncompiled, and kerasweep's own loads import it)
OWN_METRICS = {"classification": ("balanced_accuracy", "auc", "pr_auc"), "binary": ("balanced_accuracy",)}


def task_metrics(task: str, n_classes: int = 2, monitor: str = "") -> list[Any]:
    """The Keras metric objects behind `catalog.TASKS[task].metrics`, named as the catalog names them; of
    `OWN_METRICS`, only the one `monitor` (the objective) names."""
    import keras

    from kerasweep.trainers.metrics import BalancedAccuracy, ClassesAUC

    made = {"accuracy": lambda: "accuracy", "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
            "rmse": lambda: keras.metrics.RootMeanSquaredError(name="rmse"),
            "auc": lambda: ClassesAUC(n_classes) if task == "classification" else
            keras.metrics.AUC(name="auc", multi_label=task == "multilabel"),
            "pr_auc": lambda: ClassesAUC(n_classes, name="pr_auc", curve="PR") if task == "classification" else
            keras.metrics.AUC(name="pr_auc", curve="PR"),
            "balanced_accuracy": lambda: BalancedAccuracy(n_classes, binary=task == "binary")}
    own = OWN_METRICS.get(task, ())
    return [made[name]() for name in catalog.TASKS[task].metrics
            if name not in own or monitor.removeprefix("val_") == name]


def task_loss(task: str, name: str | None, y_std: np.ndarray | None) -> tuple[Any, float | None]:
    """The loss a shipped builder's model compiles with, and its weight. Regression takes `loss` (mse, mae,
    huber), computed in the target's units (the model answers in them) and weighted as if the targets were
    standardised, so one learning rate suits any units; Huber's bend sits at one standard deviation."""
    import keras

    if task not in ("regression", "forecast"):
        if name is not None:
            raise ValueError(f"loss: {name!r} applies to regression; task {task} trains with {catalog.TASKS[task].loss}")
        return catalog.TASKS[task].loss, None
    spread = float(np.mean(y_std)) if y_std is not None else 1.0
    name = name or "mse"
    if name not in catalog.REGRESSION_LOSSES:
        raise ValueError(f"loss: unknown loss {name!r}; expected one of {', '.join(catalog.REGRESSION_LOSSES)}")
    if name == "mae":
        return "mean_absolute_error", 1.0 / spread
    if name == "huber":
        return keras.losses.Huber(delta=spread), 1.0 / spread**2
    return "mean_squared_error", float(1.0 / np.mean(np.square(y_std))) if y_std is not None else None


def _wants_one_hot(model: Any) -> bool:
    """A model compiled with (non-sparse) categorical cross-entropy trains on one-hot rows."""
    loss = getattr(model, "loss", None)
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or str(loss)
    return name == "categorical_crossentropy" or type(loss).__name__ == "CategoricalCrossentropy"


class ReadRecorder(Mapping[str, Any]):
    """The values a builder gets, remembering which ones it read (a value never read never acted)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values, self.read = dict(values), set()

    def __getitem__(self, name: str) -> Any:
        value = self._values[name]
        self.read.add(name)
        return value

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class UnreadValues(ValueError):
    """A user's builder never read values it was given: they would be logged without having acted."""


def check_builder_reads(spec: TrainSpec) -> None:
    """Build a user's `(values, input_shape, n_outputs)` network once, untrained, with `spec.params`, and
    raise UnreadValues when it ignores one: a misspelt param costs seconds before the sweep starts, not
    five failed trials. Any other error of the builder is left to the trials, which record it."""
    from kerasweep.trainers.models import build

    data = load_data(spec)
    given = ReadRecorder({**TRAINING_DEFAULTS, **spec.params})
    try:
        build(spec.model, given, data.input_shape, data.n_outputs, head=catalog.TASKS[spec.task].head)
    except Exception:  # noqa: BLE001 - the trials run the builder again and record what it raises
        return
    check_all_read(given, spec.params)


def check_all_read(given: ReadRecorder, params: Mapping[str, Any]) -> None:
    """Every value the space gave a user's builder (beyond the training loop's own) was read by it.

    A searched value the builder never looks at would be sampled, logged, ranked and exported as if it
    mattered; the trial fails instead, naming it.
    """
    unread = sorted(set(params) - given.read - set(catalog.TRAINING_PARAMS))
    if unread:
        read = sorted(given.read - set(catalog.TRAINING_PARAMS)) or ["none"]
        raise UnreadValues(f"the model builder never read {', '.join(unread)} from its values, so they would be "
                         f"logged without having acted; read them in the builder (values['{unread[0]}']) or remove "
                         f"them from the space; it reads {', '.join(read)}")


OPTIMIZER_PARAMS = ("optimizer", "learning_rate", "momentum", "nesterov", "weight_decay", "clipnorm")


def check_own_compile(network: Any, params: Mapping[str, Any]) -> None:
    """A builder that compiles its own model keeps its optimizer and loss; a searched or fixed optimizer
    value that its optimizer does not carry would be logged and exported without having acted: refuse it.

    (A builder that sampled `learning_rate` and ignored it in `compile()` once searched nothing while
    reporting a winner.)
    """
    optimizer = network.optimizer
    found = {
        "optimizer": type(optimizer).__name__.lower(),
        "learning_rate": float(np.asarray(optimizer.learning_rate)),
        "momentum": getattr(optimizer, "momentum", None),
        "nesterov": getattr(optimizer, "nesterov", None),
        "weight_decay": getattr(optimizer, "weight_decay", None),
        "clipnorm": getattr(optimizer, "clipnorm", None),
    }
    if params.get("loss") is not None:
        raise ValueError(f"the model builder compiles its own loss, so loss={params['loss']!r} from the space would "
                         "not act; compile with the loss in the builder, or remove loss from the space")
    for name in OPTIMIZER_PARAMS:
        if name not in params:
            continue
        wanted = catalog.OPTIMIZERS.get(params[name], params[name]).lower() if name == "optimizer" else params[name]
        have = found[name]
        same = have == wanted if isinstance(wanted, (str, bool)) or wanted is None else \
            have is not None and math.isclose(float(have), float(wanted), rel_tol=1e-5, abs_tol=1e-12)
        if not same:
            raise ValueError(
                f"the model builder compiles its own optimizer ({type(optimizer).__name__}, learning_rate="
                f"{found['learning_rate']:g}), so {name}={params[name]!r} from the space would not act; pass "
                f"values[{name!r}] to the optimizer in the builder's compile(), or remove {name} from the space")


def check_head(network: Any, task: str, n_outputs: int) -> None:
    """A builder's output must fit the task: its width, and no softmax where one sigmoid or a number is meant
    (a user's classifier head under task: regression would train and answer nonsense without a word)."""
    width = network.output_shape[-1]
    if width != n_outputs:
        raise ValueError(f"the model has {width} outputs; task {task} on this data needs {n_outputs}: build the last "
                         f"layer with the n_outputs the builder is given")
    activation = getattr(getattr(network.layers[-1], "activation", None), "__name__", None)
    wanted = catalog.TASKS[task].head
    if activation in ("softmax", "sigmoid", "linear") and activation != wanted:
        raise ValueError(f"the model's last layer uses {activation}; task {task} needs {wanted} (accept head= in the "
                         f"builder and pass it to the last layer)")


def train(
    spec: TrainSpec,
    callbacks: Sequence[Any] = (),
    checkpoint_path: str | os.PathLike[str] | None = None,
    verbose: int = 0,
    run_eagerly: bool = False,
    resume: ResumePoint | None = None,
    stop_at: int | None = None,
    backup: BackupPolicy | None = None,
    suggestions: Suggestions | None = None,
    repeat: int = 0,
) -> TrainResult:
    """Train `spec` on its dataset, keep the best epoch's weights, save them to `checkpoint_path`.

    `repeat` k > 0 trains the same config again from other initial weights and shuffling (seed + k) on
    the same split (`budget.repeats`, KerasTuner's executions per trial).

    A define-by-run builder (of `trial` or `hp`, see `trainers.suggest`) asks `suggestions` for its
    values (an engine's live sampler); without one, it is answered with `spec.params` (production).

    The handed `callbacks` run after the loop's own (NaN stop, LR schedule, EarlyStopping), so a reporter
    sees every finished epoch and may set `model.stop_training` to prune. Raises TrainingDiverged
    when the loss stops being finite.

    A slice of the plan: `resume` (a saved `.keras` model, optimizer state included) continues training
    after its epochs, and `stop_at` ends it early; the learning-rate schedule still spans `spec.epochs`.
    KerasTuner's Hyperband trains its rounds this way, and a crashed trial's retry continues from the
    copy that `backup` keeps (see `backup_callback`).
    """
    import keras

    from kerasweep.trainers import backend
    from kerasweep.trainers.data import make_pipeline
    from kerasweep.trainers.fit_options import class_weights, user_callbacks
    from kerasweep.trainers.models import build, build_by_running, hypermodel_of, overridden_fit, resolve_builder

    gpus = configure_runtime()
    values = {**TRAINING_DEFAULTS, **spec.params}
    keras.utils.set_random_seed(spec.seed + repeat)  # the split depends on spec.seed alone (load_data)
    data = load_data(spec)

    style = builder_style(resolve_builder(spec.model)) if catalog.is_user_builder(spec.model) else "values"
    asked = None
    if style != "values":
        asked = suggestions if suggestions is not None else Suggestions.replay(values)  # an empty one is falsy
    hypermodel = hypermodel_of(spec.model) if style == "hp" else None
    task = catalog.TASKS[spec.task]

    def build_network() -> Any:
        if style == "values":
            given = ReadRecorder(values)
            network = build(spec.model, given, data.input_shape, data.n_outputs, head=task.head)
            if catalog.is_user_builder(spec.model):
                check_all_read(given, spec.params)
            return network
        return hypermodel.build(asked) if hypermodel is not None else build_by_running(spec.model, asked)

    # set per trial, so one trial's choice never leaks into the next trial of the same worker; by default the
    # network is built in float32 and, when it proves big enough on a GPU, built again under mixed precision
    chosen = values["mixed_precision"]
    policy = backend.precision(chosen, 0, gpus)
    keras.mixed_precision.set_global_policy(policy)
    with backend.distribution() as devices:  # several GPUs: one trial trains on all of them (fit included)
        if resume is not None:
            from kerasweep.trainers import metrics  # noqa: F401 - registers the metrics a saved model may carry

            model = keras.models.load_model(resume.path)
            policy = getattr(getattr(inner_network(model), "dtype_policy", None), "name", policy)
        else:
            network = build_network()
            model = with_input_scaling(network, data)  # builds a network that declared no Input, too
            sized = backend.precision(None, network.count_params(), gpus) if chosen is None and gpus else policy
            if sized != policy:  # a big model on a GPU: built again, under mixed precision
                policy = sized
                keras.mixed_precision.set_global_policy(policy)
                network = build_network()
                model = with_input_scaling(network, data)
            check_head(network, spec.task, data.n_outputs)
            if getattr(network, "optimizer", None) is not None:  # the builder compiled it: its compile is kept
                check_own_compile(network, spec.params)
                model.compile_from_config(network.get_compile_config())
                model.run_eagerly = run_eagerly
            else:
                loss, weight = task_loss(spec.task, values.get("loss"), data.y_std)
                model.compile(optimizer=make_optimizer(values), loss=loss, loss_weights=weight,
                              metrics=task_metrics(spec.task, data.n_classes, spec.monitor), run_eagerly=run_eagerly)  # eager: step through a builder
        one_hot = spec.task == "classification" and _wants_one_hot(model)  # the builder compiled a one-hot loss
        whole_batches_only = devices > 1 and not backend.keeps_uneven_last_batch()  # JAX across several devices
        shuffle = bool(spec.fit.get("shuffle", True))
        if data.streams is not None:  # a data function's tf.data datasets, streamed
            from kerasweep.trainers.streams import pipelines

            if whole_batches_only:
                raise ValueError(f"data: on JAX, a data function's streams train on one device and this trial sees "
                                 f"{devices}; give it one GPU (CUDA_VISIBLE_DEVICES) or return arrays")

            train_ds, val_ds = pipelines(data, values["batch_size"], spec.seed + repeat, one_hot, shuffle)
        else:
            y_train, y_val = data.y_train, data.y_val
            if one_hot:
                y_train, y_val = (keras.utils.to_categorical(y, data.n_classes) for y in (y_train, y_val))
            train_ds = make_pipeline(data.x_train, y_train, values["batch_size"], shuffle=shuffle,
                                     seed=spec.seed + repeat, shards=devices)
            val_ds = make_pipeline(data.x_val, y_val, values["batch_size"], shuffle=False, shards=devices)
        weights = class_weights(spec.fit.get("class_weight"), data)
        mode = "max" if spec.direction == "maximize" else "min"
        early_stopping = keras.callbacks.EarlyStopping(
            monitor=spec.monitor, mode=mode, patience=int(values["patience"]), min_delta=float(values["min_delta"]),
            restore_best_weights=True,
        )
        own = [_stop_on_nan(), *schedule_callbacks(values, spec.epochs, spec.monitor, mode), early_stopping]
        if whole_batches_only and data.streams is None:  # validated undistributed, see array_batches
            own.insert(0, undistributed_validation(data.x_val, y_val, values["batch_size"]))
            val_ds = None
        # the resumable copy is taken last, once the handed hooks logged the epoch: a kill between the two then
        # costs a re-trained epoch, never a hole in the retry's curve (its copy would hold an epoch MLflow lacks)
        last = [backup_callback(backup.folder, backup.every_s)] if backup is not None else []
        initial_epoch = resume.epoch if resume is not None else 0
        fit_kwargs = {"epochs": stop_at or spec.epochs, "initial_epoch": initial_epoch, "verbose": verbose,
                      "callbacks": [*own, *user_callbacks(spec.callbacks), *callbacks, *last], "class_weight": weights}
        own_fit = overridden_fit(hypermodel)
        if own_fit is None:
            # a tf.data pipeline shuffles itself (Keras warns at each fit that its own shuffle does not act)
            own_order = {} if isinstance(train_ds, keras.utils.PyDataset) else {"shuffle": False}
            fitted = model.fit(train_ds, validation_data=val_ds, **own_order, **fit_kwargs)
        else:  # a KerasTuner HyperModel's own fit: it may ask for batch_size, shuffle, ... from hp, as in KerasTuner
            if whole_batches_only:
                raise ValueError(f"model: on JAX, a HyperModel's own fit trains on one device and this trial sees "
                                 f"{devices}; give it one GPU (CUDA_VISIBLE_DEVICES)")
            if "shuffle" in spec.fit:
                raise ValueError("fit.shuffle: the HyperModel's own fit decides shuffling; remove fit.shuffle")
            if data.streams is None:  # arrays, as KerasTuner hands them, so that its fit may pass batch_size
                fitted = own_fit(asked, model, data.x_train, y_train, validation_data=(data.x_val, y_val), **fit_kwargs)
            else:
                fitted = own_fit(asked, model, train_ds, validation_data=val_ds, **fit_kwargs)
            if not isinstance(fitted, keras.callbacks.History):
                raise TypeError(f"the HyperModel's fit returned {type(fitted).__name__}; return model.fit(...)'s History, "
                                "whose per-epoch metrics kerasweep logs and prunes on")
    history = fitted.history

    losses = history.get("loss", [])
    if losses and not math.isfinite(losses[-1]):
        raise TrainingDiverged(
            f"loss became {losses[-1]} at epoch {initial_epoch + len(losses)}; try a lower learning rate")
    if spec.monitor not in history:
        raise KeyError(f"training did not produce metric {spec.monitor!r}; it produced {', '.join(history)}")
    scores = history[spec.monitor]
    best_epoch = scores.index(max(scores) if mode == "max" else min(scores))
    if checkpoint_path is not None:
        Path(checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
        model.save(checkpoint_path)
    measures = measure(model, data.x_val[:1], checkpoint_path)
    if data.series is not None:  # a forecast: how the error grows with the steps ahead
        from kerasweep.trainers.forecast import step_errors

        measures.update(step_errors(model.predict(data.x_val, verbose=0), data.y_val, data.series.plan))
    return TrainResult(history, best_epoch, float(scores[best_epoch]), model, len(scores), measures,
                       backend=backend.name(), precision=policy, devices=devices)


def measure(model: Any, row: Any, saved: str | os.PathLike[str] | None = None, calls: int = 20) -> dict[str, float]:
    """What a model costs in production (catalog.MEASURES): parameters, bytes of its saved file (when
    saved), and the median milliseconds of one prediction on one raw row after three warm-up calls, on
    this machine as loaded at that moment. `predict_on_batch` runs the compiled prediction step, as a
    server answering one request does; `model.predict` would add its own set-up (a dataset per call)."""
    for _ in range(3):
        model.predict_on_batch(row)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model.predict_on_batch(row)
        times.append((time.perf_counter() - start) * 1000)
    found = {"model_params": float(model.count_params()), "latency_ms": float(np.median(times))}
    if saved is not None and Path(saved).exists():
        found["model_bytes"] = float(Path(saved).stat().st_size)
    return found
