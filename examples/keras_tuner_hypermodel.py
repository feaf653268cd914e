"""KerasTuner's `HyperModel` with its own `fit`, from the getting-started guide's "Tune model training",
run by kerasweep unchanged (`spaces/kt_hypermodel.yaml`).

    make sweep SPACE=kt_hypermodel

`build(hp)` declares the layer width and compiles (Adam, one-hot categorical cross-entropy); `fit(hp,
model, *args, **kwargs)` declares the batch size and shuffling and trains. kerasweep hands `fit` the
training arrays, the validation data, the epochs and its callbacks (reporting, pruning, early stopping)
as KerasTuner does, so both methods' params are searched, logged and exported alike.
"""

from __future__ import annotations

import keras
import keras_tuner
from keras import layers


class MyHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential()
        model.add(layers.Flatten())
        model.add(layers.Dense(units=hp.Int("units", min_value=32, max_value=512, step=32), activation="relu"))
        model.add(layers.Dense(10, activation="softmax"))
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), shuffle=hp.Boolean("shuffle"), **kwargs)
