"""What the trainers can do, as plain names: read by validation without importing TensorFlow.

Space validation runs before any compute and must answer in well under a second, so the names of
models, datasets, optimizers, activations, params and metrics live here as data. The modules that
build things (`models.py`, `data.py`, `fit.py`) check themselves against this catalog in the tests.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

#: Bundled scikit-learn datasets: name -> (loader function name, kind). Images are reshaped to HxWx1.
BUNDLED_DATASETS: dict[str, str] = {
    "diabetes": "regression",  # raw features and target (scikit-learn's scaled=False)
    "digits": "image",
    "breast_cancer": "tabular",
    "wine": "tabular",
    "iris": "tabular",
}

#: File suffixes accepted as user data (a folder of per-class image folders is accepted too).
DATA_FILE_SUFFIXES: tuple[str, ...] = (".npz", ".csv")

#: Optimizer names -> the Keras class that implements them.
OPTIMIZERS: dict[str, str] = {
    "adam": "Adam",
    "adamw": "AdamW",
    "sgd": "SGD",
    "rmsprop": "RMSprop",
    "nadam": "Nadam",
}

#: Activation names Keras resolves with `keras.activations.get`.
ACTIVATIONS: frozenset[str] = frozenset(
    {"relu", "gelu", "elu", "selu", "swish", "silu", "tanh", "sigmoid", "leaky_relu", "mish"}
)

#: Learning-rate schedules, applied per epoch after an optional linear warm-up.
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine", "exponential", "step", "plateau")

#: Losses a regression trains with (`loss`), measured in the target's units: squared, absolute, Huber's.
REGRESSION_LOSSES: tuple[str, ...] = ("mse", "mae", "huber")

#: Params the training loop itself reads (every model accepts these).
TRAINING_PARAMS: dict[str, str] = {
    "learning_rate": "optimizer step size (float > 0)",
    "optimizer": f"one of {', '.join(OPTIMIZERS)}",
    "momentum": "SGD/RMSprop momentum in [0, 1)",
    "nesterov": "SGD Nesterov momentum (bool)",
    "weight_decay": "AdamW decoupled weight decay (float >= 0)",
    "clipnorm": "clip each gradient to this norm; 0 = off (float >= 0)",
    "batch_size": "examples per step (int > 0)",
    "lr_schedule": f"one of {', '.join(LR_SCHEDULES)}",
    "warmup_epochs": "epochs of linear learning-rate warm-up before the schedule (int >= 0; not with plateau)",
    "decay_rate": "exponential: factor per epoch; step: factor per step (float in (0, 1])",
    "step_epochs": "step schedule: epochs between decays (int >= 1)",
    "plateau_factor": "plateau schedule: factor on the learning rate when the objective stalls (float in (0, 1))",
    "plateau_patience": "plateau schedule: epochs without improvement before reducing (int >= 1)",
    "patience": "EarlyStopping patience in epochs (int >= 1)",
    "min_delta": "EarlyStopping: smallest change that counts as an improvement (float >= 0)",
    "mixed_precision": "mixed_float16 on or off; default: on for models of 20M+ parameters on a GPU, else off (bool)",
    "loss": f"regression only: one of {', '.join(REGRESSION_LOSSES)} (default mse; mae trains for the median)",
    "lookback": "forecast only: the samples of history each window reads (int >= 1; default 16)",
}

#: Params each bundled model builder reads, on top of TRAINING_PARAMS.
MODEL_PARAMS: dict[str, dict[str, str]] = {
    "cnn": {
        "filters": "filters in the first conv block, doubled per block (int > 0)",
        "blocks": "number of conv blocks (int >= 1)",
        "kernel_size": "conv kernel size (int, odd)",
        "dense_units": "width of the dense layer before the classifier (int > 0)",
        "dropout": "dropout rate before the classifier in [0, 1)",
        "activation": f"one of {', '.join(sorted(ACTIVATIONS))}",
        "l1": "L1 weight penalty on conv/dense kernels (float >= 0)",
        "l2": "L2 weight penalty on conv/dense kernels (float >= 0)",
        "batch_norm": "batch normalisation after each conv (bool)",
        "pooling": "after each block: max, avg or none",
        "augment": "random image augmentation during training only (bool)",
        "translate": "augment: largest shift as a fraction of height/width (float in [0, 1))",
        "rotate": "augment: largest rotation as a fraction of a full turn (float in [0, 1))",
        "zoom": "augment: largest zoom in or out as a fraction (float in [0, 1))",
        "contrast": "augment: largest contrast change as a fraction; 0 = off (float in [0, 1))",
        "flip": "augment: none, horizontal, vertical or horizontal_and_vertical (only where it makes sense)",
    },
    "mlp": {
        "units": "width of each hidden layer (int > 0)",
        "layers": "number of hidden layers (int >= 0; 0: inputs straight to the head, a linear model)",
        "units_2": "width of hidden layer 2 when it exists (default: units; search it with when: {layers: [2, 3, 4]})",
        "units_3": "width of hidden layer 3 when it exists (default: units_2)",
        "units_4": "width of hidden layer 4 when it exists (default: units_3)",
        "dropout": "dropout rate after each hidden layer in [0, 1)",
        "activation": f"one of {', '.join(sorted(ACTIVATIONS))}",
        "l1": "L1 weight penalty on dense kernels (float >= 0)",
        "l2": "L2 weight penalty on dense kernels (float >= 0)",
        "batch_norm": "batch normalisation after each hidden layer (bool)",
    },
}

MODEL_PARAMS["transfer"] = {
    "backbone": "keras.applications backbone: mobilenet_v3_small or efficientnet_b0",
    "image_size": "images are resized to this square size for the backbone (int >= 32)",
    "weights": "path to a local .weights.h5 file of pretrained backbone weights; none = random (nothing is downloaded)",
    "freeze_fraction": "share of backbone layers frozen, from the input side (float in [0, 1])",
    "head_units": "width of the new dense head (int > 0)",
    "dropout": "dropout rate before the classifier in [0, 1)",
    "activation": f"head activation: one of {', '.join(sorted(ACTIVATIONS))}",
}

MODEL_PARAMS["rnn"] = {
    "cell": "recurrent cell: lstm or gru",
    "units": "width of each recurrent layer (int > 0)",
    "layers": "number of stacked recurrent layers (int >= 1)",
    "bidirectional": "read each sequence both ways (bool)",
    "dropout": "dropout rate on each layer's inputs and before the output in [0, 1)",
    "recurrent_dropout": "dropout rate on the recurrent state in [0, 1) (0 keeps the fast fused kernels)",
}

MODEL_PARAMS["conv1d"] = {
    "filters": "filters of each 1-D convolution (int > 0)",
    "kernel_size": "steps each convolution reads (int >= 1)",
    "blocks": "number of convolution blocks (int >= 1)",
    "dilation": "dilation of the convolutions, multiplied by 2 per block: a longer reach back (int >= 1)",
    "dropout": "dropout rate before the output in [0, 1)",
    "activation": f"one of {', '.join(sorted(ACTIVATIONS))}",
}

#: Backbones the transfer model can put under its head.
BACKBONES: dict[str, str] = {"mobilenet_v3_small": "MobileNetV3Small", "efficientnet_b0": "EfficientNetB0"}

#: Params whose values must come from a closed list of names.
NAMED_VALUES: dict[str, frozenset[str]] = {
    "optimizer": frozenset(OPTIMIZERS),
    "activation": ACTIVATIONS,
    "lr_schedule": frozenset(LR_SCHEDULES),
    "pooling": frozenset({"max", "avg", "none"}),
    "flip": frozenset({"none", "horizontal", "vertical", "horizontal_and_vertical"}),
    "backbone": frozenset(BACKBONES),
    "cell": frozenset({"lstm", "gru"}),
    "loss": frozenset(REGRESSION_LOSSES),
}

@dataclass(frozen=True)
class ValueRule:
    """The type and range of values a param takes, as the code that reads it expects them."""

    kind: str  # "int", "float", "bool" or "name" (one of NAMED_VALUES) or "path"
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: low itself is not allowed
    high_open: bool = False
    nullable: bool = False  # null means "the default" (mixed precision: big models on a GPU)

    def problem(self, name: str, value: object) -> str | None:
        """Why `value` cannot be `name`'s value (the rule, then the value), or None when it can."""
        if value is None:
            return None if self.nullable else f"{name} needs a value, got null"
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"{name} is true or false, got {value!r}"
        if self.kind in ("name", "path"):
            if not isinstance(value, str):
                return f"{name} is a name (text), got {value!r}"
            allowed = NAMED_VALUES.get(name)
            if allowed is not None and value not in allowed:
                return f"unknown {name} {value!r}; Keras knows {', '.join(sorted(allowed))}"
            return None
        whole = isinstance(value, int) and not isinstance(value, bool)
        if self.kind == "int" and not whole:
            return f"{name} is a whole number, got {value!r}"
        if not whole and not isinstance(value, float) or isinstance(value, bool):
            return f"{name} is a number, got {value!r}"
        if not math.isfinite(value):
            return f"{name} must be finite, got {value!r}"
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)) or \
                self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            bounds = self.describe_range()
            return f"{name} must be {bounds}, got {value!r}" if bounds[0] in "<>" else \
                f"{name} must lie in {bounds}, got {value!r}"
        return None

    def describe_range(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


_POSITIVE_INT, _COUNT = ValueRule("int", 1), ValueRule("int", 0)
_RATE = ValueRule("float", 0.0, 1.0, high_open=True)
_NON_NEGATIVE = ValueRule("float", 0.0)

#: What each known param's value must be: the type the code reads and its range (see the tables above).
VALUE_RULES: dict[str, ValueRule] = {
    "learning_rate": ValueRule("float", 0.0, low_open=True),
    "optimizer": ValueRule("name"),
    "momentum": _RATE,
    "nesterov": ValueRule("bool"),
    "weight_decay": _NON_NEGATIVE,
    "clipnorm": _NON_NEGATIVE,
    "batch_size": _POSITIVE_INT,
    "lr_schedule": ValueRule("name"),
    "warmup_epochs": _COUNT,
    "decay_rate": ValueRule("float", 0.0, 1.0, low_open=True),
    "step_epochs": _POSITIVE_INT,
    "plateau_factor": ValueRule("float", 0.0, 1.0, low_open=True, high_open=True),
    "plateau_patience": _POSITIVE_INT,
    "patience": _POSITIVE_INT,
    "lookback": _POSITIVE_INT,
    "min_delta": _NON_NEGATIVE,
    "mixed_precision": ValueRule("bool", nullable=True),
    "loss": ValueRule("name", nullable=True),
    "filters": _POSITIVE_INT,
    "blocks": _POSITIVE_INT,
    "kernel_size": _POSITIVE_INT,
    "dilation": _POSITIVE_INT,
    "dense_units": _POSITIVE_INT,
    "dropout": _RATE,
    "activation": ValueRule("name"),
    "l1": _NON_NEGATIVE,
    "l2": _NON_NEGATIVE,
    "batch_norm": ValueRule("bool"),
    "pooling": ValueRule("name"),
    "augment": ValueRule("bool"),
    "translate": _RATE,
    "rotate": _RATE,
    "zoom": _RATE,
    "contrast": _RATE,
    "flip": ValueRule("name"),
    "units": _POSITIVE_INT,
    "layers": _POSITIVE_INT,
    "units_2": _POSITIVE_INT,
    "units_3": _POSITIVE_INT,
    "units_4": _POSITIVE_INT,
    "backbone": ValueRule("name"),
    "image_size": ValueRule("int", 32),
    "weights": ValueRule("path", nullable=True),
    "freeze_fraction": ValueRule("float", 0.0, 1.0),
    "head_units": _POSITIVE_INT,
    "cell": ValueRule("name"),
    "bidirectional": ValueRule("bool"),
    "recurrent_dropout": _RATE,
}

@dataclass(frozen=True)
class ActsWhen:
    """A param that acts only for some values of another (its parent): momentum only with sgd or rmsprop,
    a hidden layer's width only when that layer exists. `values` lists the parent values it acts for, or
    `at_least` the smallest; `default` is the parent's value when a space leaves it out."""

    parent: str
    values: tuple[Any, ...] = ()
    at_least: int | None = None
    default: Any = None

    def acts(self, parent_value: Any) -> bool:
        if self.at_least is not None:
            return isinstance(parent_value, int) and parent_value >= self.at_least
        return parent_value in self.values

    def describe(self) -> str:
        return f">= {self.at_least}" if self.at_least is not None else " or ".join(map(str, self.values))


_AUGMENT = ActsWhen("augment", (True,), default=False)
_HIDDEN = ActsWhen("layers", at_least=1, default=2)
#: model ("*": every shipped model) -> param -> when it acts; a space that searches a param
#: where its parent can take a value it does not act for would log values that did nothing (space.py).
ACTS_ONLY_WHEN: dict[str, dict[str, ActsWhen]] = {
    "*": {
        "momentum": ActsWhen("optimizer", ("sgd", "rmsprop"), default="adam"),
        "nesterov": ActsWhen("optimizer", ("sgd",), default="adam"),
        "weight_decay": ActsWhen("optimizer", ("adamw",), default="adam"),
        "decay_rate": ActsWhen("lr_schedule", ("exponential", "step"), default="constant"),
        "step_epochs": ActsWhen("lr_schedule", ("step",), default="constant"),
        "plateau_factor": ActsWhen("lr_schedule", ("plateau",), default="constant"),
        "plateau_patience": ActsWhen("lr_schedule", ("plateau",), default="constant"),
    },
    "cnn": {name: _AUGMENT for name in ("translate", "rotate", "zoom", "contrast", "flip")},
    "mlp": {**{name: _HIDDEN for name in ("units", "dropout", "activation", "batch_norm", "l1", "l2")},
            **{f"units_{k}": ActsWhen("layers", at_least=k, default=2) for k in (2, 3, 4)}},
}


#: Where one model reads a param differently from the rest: an mlp with no hidden layer is a linear
#: model (logistic or linear regression), the baseline a sweep should be able to find.
MODEL_VALUE_RULES: dict[str, dict[str, ValueRule]] = {"mlp": {"layers": _COUNT}}

@dataclass(frozen=True)
class Task:
    """What a task decides, in one place: the output head, the loss, the metrics logged, the default
    objective and whether the train/validation split keeps class proportions."""

    head: str  # activation of the output layer the shipped builders put on top
    loss: str
    metrics: tuple[str, ...]  # logged besides the loss, for training and validation (val_...)
    objective: tuple[str, str]  # (metric, direction) when the space names none
    stratify: bool


TASKS: dict[str, Task] = {
    # integer or text labels, or one-hot rows: one softmax over the classes
    # (balanced_accuracy: the mean recall per class, which a rare class cannot game; auc, pr_auc: one-vs-rest,
    # macro; these three are computed when the objective names them: trainers.fit.OWN_METRICS)
    "classification": Task("softmax", "sparse_categorical_crossentropy",
                           ("accuracy", "balanced_accuracy", "auc", "pr_auc"),
                           ("val_accuracy", "maximize"), True),
    # two classes: one sigmoid output
    # (pr_auc: the area under precision-recall, the honest objective for a rare positive class;
    # balanced_accuracy is computed when the objective names it)
    "binary": Task("sigmoid", "binary_crossentropy", ("accuracy", "balanced_accuracy", "auc", "pr_auc"),
                   ("val_accuracy", "maximize"), True),
    # several yes/no labels per example (0/1 columns): one sigmoid per label
    "multilabel": Task("sigmoid", "binary_crossentropy", ("accuracy", "auc"), ("val_accuracy", "maximize"), False),
    # numbers (one or several target columns), predicted in the target's own units
    "regression": Task("linear", "mean_squared_error", ("mae", "rmse"), ("val_mae", "minimize"), False),
    # the next `horizon` values of a series from its last `lookback` rows, split in time (trainers.forecast)
    "forecast": Task("linear", "mean_squared_error", ("mae", "rmse"), ("val_mae", "minimize"), False),
}


def task_metrics(task: str) -> tuple[str, ...]:
    """Every metric training logs for `task` (Keras history keys); an objective must name one."""
    logged = ("loss", *TASKS[task].metrics)
    return (*logged, *(f"val_{name}" for name in logged))


#: Metrics a classification run produces (Keras history keys).
METRICS: tuple[str, ...] = task_metrics("classification")
#: Every metric any task logs: what a resumed trial copies from the run it continues.
ALL_METRICS: tuple[str, ...] = tuple(sorted({m for task in TASKS for m in task_metrics(task)}))
#: What a trained model costs, measured once training ends and logged on its trial run: its parameter
#: count, the size of its saved `.keras` file, and the median milliseconds of one single-row prediction.
MEASURES: tuple[str, ...] = ("model_params", "model_bytes", "latency_ms")
#: A forecast's error per step ahead, logged beside the measures once a trial ends: val_mae_step_<h>.
STEP_ERROR = "val_mae_step_"


def is_measure(name: str) -> bool:
    """Whether a trial's final report carries `name` as a measure (logged once, not per epoch)."""
    return name in MEASURES or name.startswith(STEP_ERROR)


def known_params(model: str) -> dict[str, str] | None:
    """All param names `model` reads, with their meaning (training params included); None for a
    user builder (`module:function`), whose params only its author knows."""
    if is_user_builder(model):
        return None
    return {**TRAINING_PARAMS, **MODEL_PARAMS[model]}


DATA_FUNCTION = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def is_data_function(data: str) -> bool:
    """`mypackage.data:load` names a user's function that returns the arrays, rather than a file."""
    return DATA_FUNCTION.fullmatch(data) is not None


def is_user_builder(model: str) -> bool:
    """`mypackage.models:build` names a user's builder function rather than a bundled model."""
    return ":" in model
