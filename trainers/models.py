"""Keras model builders by name: `build(name, values, input_shape, n_outputs, head) -> keras.Model`.

A builder takes a plain mapping of values (sampled and fixed alike), so an exported config rebuilds
the winning model exactly, with or without kerasweep. Missing values take the defaults below.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
from keras import layers, regularizers

from kerasweep.trainers import catalog
from kerasweep.trainers.user_code import import_object

Builder = Callable[[Mapping[str, Any], tuple[int, ...], int], keras.Model]

CNN_DEFAULTS = {
    "filters": 32,  # enough for 8x8 digits; doubled per block
    "blocks": 2,  # 8x8 -> 4x4 -> 2x2 with pooling
    "kernel_size": 3,
    "dense_units": 64,
    "dropout": 0.2,
    "activation": "relu",
    "l1": 0.0,
    "l2": 0.0,
    "batch_norm": False,
    "pooling": "max",
    "augment": False,  # the augmentation settings below apply only when this is on
    "translate": 0.1,
    "rotate": 0.05,
    "zoom": 0.1,
    "contrast": 0.0,
    "flip": "none",  # digits and text must not be mirrored; natural photos usually may be
}
MLP_DEFAULTS = {"units": 64, "layers": 2, "units_2": None, "units_3": None, "units_4": None, "dropout": 0.1,
                "activation": "relu", "l1": 0.0, "l2": 0.0, "batch_norm": False}


def _penalty(values: Mapping[str, Any]) -> regularizers.Regularizer | None:
    """L1 and/or L2 on kernels, or none when both are zero."""
    l1, l2 = float(values["l1"] or 0), float(values["l2"] or 0)
    return regularizers.l1_l2(l1=l1, l2=l2) if (l1 or l2) else None


def build_cnn(values: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int,
              head: str = "softmax") -> keras.Model:
    """Conv blocks (conv, optional batch norm, activation, pooling) then a dense head."""
    v = {**CNN_DEFAULTS, **values}
    reg = _penalty(v)
    inputs = keras.Input(shape=input_shape)
    x = layers.Reshape((*input_shape, 1))(inputs) if len(input_shape) == 2 else inputs  # (h, w): one channel
    x = augmentation(v)(x) if v["augment"] else x
    pooling = {"max": layers.MaxPooling2D, "avg": layers.AveragePooling2D}.get(v["pooling"])
    for block in range(int(v["blocks"])):
        x = layers.Conv2D(int(v["filters"]) * 2**block, int(v["kernel_size"]), padding="same", kernel_regularizer=reg)(x)
        if v["batch_norm"]:
            x = layers.BatchNormalization()(x)
        x = layers.Activation(v["activation"])(x)
        if pooling is not None and x.shape[1] >= 2 and x.shape[2] >= 2:
            x = pooling(pool_size=2)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(float(v["dropout"]))(x)
    x = layers.Dense(int(v["dense_units"]), activation=v["activation"], kernel_regularizer=reg)(x)
    x = layers.Dropout(float(v["dropout"]))(x)
    outputs = layers.Dense(n_outputs, activation=head, dtype="float32")(x)  # float32 under mixed precision
    return keras.Model(inputs, outputs, name="cnn")


def augmentation(values: Mapping[str, Any]) -> keras.Sequential:
    """Keras preprocessing layers that perturb images in training and pass them through at inference."""
    steps: list[layers.Layer] = []
    if float(values["translate"]) > 0:
        steps.append(layers.RandomTranslation(float(values["translate"]), float(values["translate"])))
    if float(values["rotate"]) > 0:
        steps.append(layers.RandomRotation(float(values["rotate"])))
    if float(values["zoom"]) > 0:
        steps.append(layers.RandomZoom(float(values["zoom"])))
    if float(values["contrast"]) > 0:
        steps.append(layers.RandomContrast(float(values["contrast"])))
    if values["flip"] != "none":
        steps.append(layers.RandomFlip(values["flip"]))
    return keras.Sequential(steps, name="augmentation")


def build_mlp(values: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int,
              head: str = "softmax") -> keras.Model:
    """Dense layers (dense, optional batch norm, activation, dropout) then the task's output head."""
    v = {**MLP_DEFAULTS, **values}
    reg = _penalty(v)
    inputs = keras.Input(shape=input_shape)
    x = layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    width = int(v["units"])
    for index in range(1, int(v["layers"]) + 1):
        width = int(v.get(f"units_{index}") or width)  # a layer's own width, else the one before it
        x = layers.Dense(width, kernel_regularizer=reg)(x)
        if v["batch_norm"]:
            x = layers.BatchNormalization()(x)
        x = layers.Activation(v["activation"])(x)
        x = layers.Dropout(float(v["dropout"]))(x)
    outputs = layers.Dense(n_outputs, activation=head, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mlp")


TRANSFER_DEFAULTS = {
    "backbone": "mobilenet_v3_small",  # small and fast; efficientnet_b0 for more capacity
    "image_size": 32,  # the smallest input the backbones accept
    "weights": "none",  # a local file; kerasweep never downloads weights
    "freeze_fraction": 0.5,
    "head_units": 64,
    "dropout": 0.2,
    "activation": "relu",
}


def build_transfer(values: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int,
                   head: str = "softmax") -> keras.Model:
    """A keras.applications backbone (pretrained weights from a local file) under a new dense head."""
    v = {**TRANSFER_DEFAULTS, **values}
    size = int(v["image_size"])
    inputs = keras.Input(shape=input_shape)
    x = layers.Reshape((*input_shape, 1))(inputs) if len(input_shape) == 2 else inputs  # (h, w): one channel
    x = layers.Resizing(size, size)(x)
    if len(input_shape) == 2 or input_shape[-1] == 1:  # grayscale -> the three channels the backbones expect
        x = layers.Concatenate()([x, x, x])
    backbone = getattr(keras.applications, catalog.BACKBONES[v["backbone"]])(
        input_shape=(size, size, 3), include_top=False, weights=None, pooling="avg"
    )
    if v["weights"] not in (None, "none"):
        backbone.load_weights(str(v["weights"]))
    frozen = int(len(backbone.layers) * float(v["freeze_fraction"]))
    for layer in backbone.layers[:frozen]:
        layer.trainable = False
    x = backbone(x)
    x = layers.Dropout(float(v["dropout"]))(x)
    x = layers.Dense(int(v["head_units"]), activation=v["activation"])(x)
    outputs = layers.Dense(n_outputs, activation=head, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="transfer")


RNN_DEFAULTS = {"cell": "lstm", "units": 32, "layers": 1, "bidirectional": False, "dropout": 0.0,
                "recurrent_dropout": 0.0}


def build_rnn(values: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int,
              head: str = "softmax") -> keras.Model:
    """Stacked LSTM or GRU layers over (steps, features) sequences, then the task's output head.

    Inputs of more than two axes per example are read as steps along the first axis (an image's rows:
    digits' 8x8 pixels are 8 steps of 8 features).
    """
    v = {**RNN_DEFAULTS, **values}
    inputs = keras.Input(shape=input_shape)
    steps = input_shape[0]
    x = layers.Reshape((steps, int(np.prod(input_shape[1:]))))(inputs) if len(input_shape) != 2 else inputs
    cell = {"lstm": layers.LSTM, "gru": layers.GRU}[v["cell"]]
    count = int(v["layers"])
    for index in range(count):
        recurrent = cell(int(v["units"]), return_sequences=index < count - 1, dropout=float(v["dropout"]),
                         recurrent_dropout=float(v["recurrent_dropout"]))
        x = layers.Bidirectional(recurrent)(x) if v["bidirectional"] else recurrent(x)
    x = layers.Dropout(float(v["dropout"]))(x)
    outputs = layers.Dense(n_outputs, activation=head, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="rnn")


CONV1D_DEFAULTS = {"filters": 32, "kernel_size": 3, "blocks": 2, "dilation": 1, "dropout": 0.0, "activation": "relu"}


def build_conv1d(values: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int,
                 head: str = "softmax") -> keras.Model:
    """Causal 1-D convolutions over (steps, features) windows, dilated more per block, then the output head:
    a forecasting model that reads a long window cheaply (a small WaveNet/TCN)."""
    v = {**CONV1D_DEFAULTS, **values}
    inputs = keras.Input(shape=input_shape)
    x = layers.Reshape((input_shape[0], int(np.prod(input_shape[1:]))))(inputs) if len(input_shape) != 2 else inputs
    for block in range(int(v["blocks"])):
        x = layers.Conv1D(int(v["filters"]), int(v["kernel_size"]), padding="causal",
                          dilation_rate=int(v["dilation"]) * 2**block, activation=v["activation"])(x)
    x = layers.Flatten()(x)  # every step's features: where in the window a pattern sits matters for a forecast
    x = layers.Dropout(float(v["dropout"]))(x)
    outputs = layers.Dense(n_outputs, activation=head, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="conv1d")


BUILDERS: dict[str, Builder] = {"cnn": build_cnn, "mlp": build_mlp, "transfer": build_transfer, "rnn": build_rnn,
                                "conv1d": build_conv1d}


def resolve_builder(name: str) -> Builder:
    """A bundled builder by name, or a user's `package.module:function` (this imports and runs user code)."""
    if name in BUILDERS:
        return BUILDERS[name]
    if ":" not in name:
        raise KeyError(f"unknown model {name!r}; expected one of {', '.join(BUILDERS)} or 'package.module:function'")
    try:
        builder = import_object(name)  # from the project folder, as `python -m` imports (trainers.user_code)
    except (ImportError, AttributeError) as exc:
        raise KeyError(f"cannot load model builder {name!r}: {exc}") from None
    if not callable(builder):
        raise KeyError(f"model builder {name!r} is not a function")
    return builder


def build(name: str, values: Mapping[str, Any], input_shape: tuple[int, ...], n_outputs: int,
          head: str = "softmax") -> keras.Model:
    """Build model `name` from `values` with `n_outputs` outputs under a `head` activation (the task's:
    softmax, sigmoid or linear); raises KeyError naming what is known.

    A user's builder takes `(values, input_shape, n_outputs)` and makes its own head; it gets `head=`
    too when its signature names that parameter. `trainers.fit` checks that the head fits the task.
    """
    builder = resolve_builder(name)
    if name in BUILDERS or "head" in inspect.signature(builder).parameters:
        return builder(values, input_shape, n_outputs, head=head)
    return builder(values, input_shape, n_outputs)


def hypermodel_of(name: str) -> Any | None:
    """The KerasTuner `HyperModel` instance `name` names (a class is instantiated), else None: one per
    training, so that its `build` and `fit` are the same object's, as in KerasTuner."""
    builder = resolve_builder(name)
    if hasattr(builder, "build") and not inspect.isfunction(builder):
        return builder() if inspect.isclass(builder) else builder
    return None


def overridden_fit(hypermodel: Any | None) -> Callable[..., Any] | None:
    """A HyperModel's own `fit(hp, model, *args, **kwargs)`, where its class overrides KerasTuner's."""
    if hypermodel is None:
        return None
    for owner in type(hypermodel).__mro__:
        if owner.__module__.split(".")[0] == "keras_tuner":
            return None  # reached KerasTuner's own HyperModel first: fit is not overridden
        if "fit" in vars(owner):
            return hypermodel.fit
    return None


def build_by_running(name: str, suggestions: Any) -> keras.Model:
    """A define-by-run builder's model: a function of `trial` or `hp` called with `suggestions`, or a
    KerasTuner `HyperModel` (class or instance) whose `build(hp)` is."""
    hypermodel = hypermodel_of(name)
    if hypermodel is not None:
        return hypermodel.build(suggestions)
    return resolve_builder(name)(suggestions)
