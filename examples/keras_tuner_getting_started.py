"""KerasTuner's getting-started model, as published, run by kerasweep unchanged (`spaces/kt_getting_started.yaml`).

    make sweep SPACE=kt_getting_started

A function of `hp` declares its own space by running: the number of layers, each layer's width, the
activation, dropout on or off and a log-sampled learning rate. It compiles itself (Adam, one-hot
categorical cross-entropy): kerasweep keeps that compile and feeds it one-hot labels.
"""

from __future__ import annotations

import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Flatten())
    # Tune the number of layers.
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(
            layers.Dense(
                # Tune number of units separately.
                units=hp.Int(f"units_{i}", min_value=32, max_value=512, step=32),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
    if hp.Boolean("dropout"):
        model.add(layers.Dropout(rate=0.25))
    model.add(layers.Dense(10, activation="softmax"))
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
