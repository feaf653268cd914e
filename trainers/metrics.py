"""Metrics Keras lacks: balanced accuracy, the objective that a rare class cannot game.

Plain accuracy scores 0.99 on a set that is 99 % one class by always answering it; balanced accuracy,
the mean of each class's recall (scikit-learn's `balanced_accuracy_score`), scores that 1 / classes.
Written with `keras.ops`, so it runs on every backend; registered, so a resumed checkpoint loads with it.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="kerasweep")
class BalancedAccuracy(keras.metrics.Metric):
    """Mean recall over the classes seen so far; `binary`: one sigmoid output, thresholded at 0.5."""

    def __init__(self, n_classes: int, binary: bool = False, name: str = "balanced_accuracy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.n_classes, self.binary = int(n_classes), bool(binary)
        self.hits = self.add_variable(shape=(self.n_classes,), initializer="zeros", name="hits")
        self.seen = self.add_variable(shape=(self.n_classes,), initializer="zeros", name="seen")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        ops = keras.ops
        if self.binary:
            predicted = ops.cast(ops.reshape(y_pred, (-1,)) > 0.5, "int32")
            true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        else:
            predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
            one_hot_rows = len(y_true.shape) == 2 and y_true.shape[-1] == self.n_classes and self.n_classes > 1
            true = ops.cast(ops.argmax(y_true, axis=-1) if one_hot_rows else ops.reshape(y_true, (-1,)), "int32")
        classes = ops.one_hot(true, self.n_classes, dtype=self.dtype)
        right = ops.cast(ops.equal(true, predicted), self.dtype)[:, None]
        self.seen.assign_add(ops.sum(classes, axis=0))
        self.hits.assign_add(ops.sum(classes * right, axis=0))

    def result(self) -> Any:
        ops = keras.ops
        present = ops.cast(self.seen > 0, self.dtype)
        recall = self.hits / ops.maximum(self.seen, 1.0)
        return ops.sum(recall * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self) -> None:
        self.hits.assign(keras.ops.zeros((self.n_classes,), dtype=self.dtype))
        self.seen.assign(keras.ops.zeros((self.n_classes,), dtype=self.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes, "binary": self.binary}


@keras.saving.register_keras_serializable(package="kerasweep")
class ClassesAUC(keras.metrics.AUC):
    """One-vs-rest AUC (ROC, or precision-recall with `curve="PR"`) over a softmax's classes, averaged over
    the classes (macro), from integer labels: Keras' AUC takes one 0/1 column per class, and a
    classification trains on class numbers."""

    def __init__(self, n_classes: int, name: str = "auc", **kwargs: Any) -> None:
        kwargs.setdefault("multi_label", True)
        kwargs.setdefault("num_labels", int(n_classes))
        super().__init__(name=name, **kwargs)
        self.n_classes = int(n_classes)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        ops = keras.ops
        if not (len(y_true.shape) == 2 and y_true.shape[-1] == self.n_classes):  # class numbers, not one-hot rows
            y_true = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.n_classes)
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes}
