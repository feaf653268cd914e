"""Optuna's Keras example model (`create_model(trial)`), run by kerasweep (`spaces/optuna_keras.yaml`).

    make sweep SPACE=optuna_keras

As published but for the first line: the example reads flattened 28x28 MNIST rows, kerasweep's bundled
digits are 8x8 images, so the model starts with `Flatten()`; CLASSES is digits' 10. A function of
`trial` declares its own space by running (`n_layers`, then `n_units_l{i}` and `dropout_l{i}` per
layer, the learning rate) and compiles itself with RMSprop: kerasweep keeps that compile.
"""

from __future__ import annotations

from keras.layers import Dense, Dropout, Flatten
from keras.models import Sequential
from keras.optimizers import RMSprop

CLASSES = 10


def create_model(trial):
    # We optimize the number of layers, hidden units and dropout in each layer and
    # the learning rate of RMSProp optimizer.

    # We define our MLP.
    n_layers = trial.suggest_int("n_layers", 1, 3)
    model = Sequential()
    model.add(Flatten())
    for i in range(n_layers):
        num_hidden = trial.suggest_int("n_units_l{}".format(i), 4, 128, log=True)
        model.add(Dense(num_hidden, activation="relu"))
        dropout = trial.suggest_float("dropout_l{}".format(i), 0.2, 0.5)
        model.add(Dropout(rate=dropout))
    model.add(Dense(CLASSES, activation="softmax"))

    # We compile our model with a sampled learning rate.
    learning_rate = trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True)
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=RMSprop(learning_rate=learning_rate),
        metrics=["accuracy"],
    )
    return model
