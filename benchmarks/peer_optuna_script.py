"""The peer of `bench_install.py`: what a user writes instead of kerasweep after `pip install optuna tensorflow
scikit-learn`. Optuna's Keras example, shaped like the default cnn sweep (digits, 20 trials x 15 epochs, TPE
with a Hyperband pruner). It needs nothing from this repository. Prints the best value."""

import sys

import keras
import optuna
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TRIALS, EPOCHS = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (20, 15)
x, y = load_digits(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(x.reshape(-1, 8, 8, 1) / 16.0, y, test_size=0.2, random_state=0)


class Prune(keras.callbacks.Callback):
    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial = trial

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.trial.report(logs["val_accuracy"], epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned()


def objective(trial: optuna.Trial) -> float:
    filters = trial.suggest_categorical("filters", [16, 32, 48])
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
                              keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dropout(trial.suggest_float("dropout", 0.0, 0.5)),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(trial.suggest_float("learning_rate", 3e-4, 3e-2, log=True)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=trial.suggest_categorical("batch_size", [32, 64, 128]),
                        epochs=EPOCHS, validation_data=(x_val, y_val), verbose=0, callbacks=[Prune(trial)])
    return max(history.history["val_accuracy"])


study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
                            pruner=optuna.pruners.HyperbandPruner())
study.optimize(objective, n_trials=TRIALS)
print(f"best {study.best_value:.4f}")
