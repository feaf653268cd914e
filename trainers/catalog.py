"""What the trainers can do, as plain names: read by validation without importing TensorFlow.

Space validation runs before any compute and must answer in well under a second, so the names of
models, datasets, optimizers, activations, params and metrics live here as data. The modules that
build things (`models.py`, `data.py`, `fit.py`) check themselves against this catalog in the tests.
"""

from __future__ import annotations

#: Bundled scikit-learn datasets: name -> (loader function name, kind). Images are reshaped to HxWx1.
BUNDLED_DATASETS: dict[str, str] = {
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

#: Params the training loop itself reads (every model accepts these).
TRAINING_PARAMS: dict[str, str] = {
    "learning_rate": "optimizer step size (float > 0)",
    "optimizer": f"one of {', '.join(OPTIMIZERS)}",
    "momentum": "SGD/RMSprop momentum in [0, 1)",
    "weight_decay": "AdamW decoupled weight decay (float >= 0)",
    "batch_size": "examples per step (int > 0)",
    "patience": "EarlyStopping patience in epochs (int >= 1)",
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
        "l2": "L2 weight penalty on conv/dense kernels (float >= 0)",
        "batch_norm": "batch normalisation after each conv (bool)",
    },
    "mlp": {
        "units": "width of each hidden layer (int > 0)",
        "layers": "number of hidden layers (int >= 1)",
        "dropout": "dropout rate after each hidden layer in [0, 1)",
        "activation": f"one of {', '.join(sorted(ACTIVATIONS))}",
        "l2": "L2 weight penalty on dense kernels (float >= 0)",
        "batch_norm": "batch normalisation after each hidden layer (bool)",
    },
}

#: Params whose values must come from a closed list of names.
NAMED_VALUES: dict[str, frozenset[str]] = {
    "optimizer": frozenset(OPTIMIZERS),
    "activation": ACTIVATIONS,
}

#: Metrics a training run produces (Keras history keys); objectives must name one of these.
METRICS: tuple[str, ...] = ("loss", "accuracy", "val_loss", "val_accuracy")


def known_params(model: str) -> dict[str, str]:
    """All param names `model` reads, with their meaning (training params included)."""
    return {**TRAINING_PARAMS, **MODEL_PARAMS[model]}
