"""The trivial predictor's score on the validation rows: what every sweep result is compared with.

A number without its baseline misleads: 0.99 accuracy where 99 % of the rows are one class, an MAE of
0.92 where predicting 0 for every row gives 0.72. `baseline` answers, for a task's metric, the best score
a predictor that ignores the inputs gets on the same validation rows as the trials: the training
majority class (accuracy), the training class shares (loss, AUC), the training mean or median
(regression), the naive forecast (a series). Needs NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = 1e-7  # Keras clips probabilities so in its cross-entropy
TIE = 1e-6  # Keras reports float32 metrics: 0.97 comes back as 0.9700000286, which beats nothing


@dataclass(frozen=True)
class Baseline:
    """A metric's value for a predictor that ignores the inputs, and which predictor that is."""

    metric: str  # the objective's name, e.g. val_accuracy
    value: float
    predictor: str  # in words: "always 'no' (the training majority)"

    def beaten_by(self, value: float, direction: str) -> bool:
        """Whether a trial's value is better than this baseline (by more than float32 noise)."""
        margin = TIE * max(1.0, abs(self.value))
        return value > self.value + margin if direction == "maximize" else value < self.value - margin


def baseline(data: Any, metric: str) -> Baseline | None:
    """The trivial predictor's `metric` on `data`'s validation rows (a `trainers.data.Dataset`); None where
    none is defined here (a streamed dataset's rows are not all in memory; a regression's weighted loss)."""
    if data.streams is not None or not metric.startswith("val_"):
        return None
    name = metric.removeprefix("val_")
    if data.task == "forecast":
        return _forecast(metric, name, data.series.naive)
    if data.task == "regression":
        return _regression(metric, name, np.asarray(data.y_train, "float64"), np.asarray(data.y_val, "float64"))
    if data.task == "multilabel":
        return _multilabel(metric, name, np.asarray(data.y_train, "float64"), np.asarray(data.y_val, "float64"))
    return _classes(metric, name, data)


def _classes(metric: str, name: str, data: Any) -> Baseline | None:
    counts = np.asarray(data.class_counts(), dtype="float64")
    shares = counts / counts.sum()
    y_val = np.asarray(data.y_val).astype(int)
    majority = int(counts.argmax())
    label = f"{data.classes[majority]!r}"
    if name == "accuracy":
        return Baseline(metric, float(np.mean(y_val == majority)), f"always {label} (the training majority)")
    if name == "loss":
        loss = -np.mean(np.log(np.clip(shares[y_val], EPS, 1 - EPS)))
        return Baseline(metric, float(loss), "the training class shares for every row")
    if name == "balanced_accuracy":  # one class's recall is 1, every other's 0
        present = len(set(y_val.tolist()))
        return Baseline(metric, 1.0 / present, f"always {label} (the training majority)")
    if name == "auc":
        return Baseline(metric, 0.5, "the same score for every row")
    if name == "pr_auc" and data.task == "binary":
        return Baseline(metric, float(np.mean(y_val == 1)), "the same score for every row (the positive share)")
    if name == "pr_auc":  # each class's area is its share; their mean over the classes present
        present = len(set(y_val.tolist()))
        return Baseline(metric, 1.0 / present, "the same scores for every row (the mean class share)")
    return None


def _multilabel(metric: str, name: str, y_train: np.ndarray, y_val: np.ndarray) -> Baseline | None:
    prevalence = y_train.mean(axis=0)
    if name == "accuracy":
        guess = (prevalence > 0.5).astype(float)
        return Baseline(metric, float(np.mean(y_val == guess)), "each label's training majority for every row")
    if name == "auc":
        return Baseline(metric, 0.5, "the same score for every row")
    if name == "loss":
        p = np.clip(prevalence, EPS, 1 - EPS)
        loss = -np.mean(y_val * np.log(p) + (1 - y_val) * np.log(1 - p))
        return Baseline(metric, float(loss), "each label's training share for every row")
    return None


def _forecast(metric: str, name: str, naive: tuple[tuple[str, float, float], ...]) -> Baseline | None:
    """The better naive forecast (the last value repeated; the value a season before) on the validation windows."""
    if name not in ("mae", "rmse"):
        return None
    scored = [(mae if name == "mae" else rmse, predictor) for predictor, mae, rmse in naive]
    value, predictor = min(scored)
    return Baseline(metric, value, f"the naive forecast: {predictor}")


def _regression(metric: str, name: str, y_train: np.ndarray, y_val: np.ndarray) -> Baseline | None:
    if name not in ("mae", "rmse"):
        return None
    candidates = {"median": np.median(y_train, axis=0), "mean": np.mean(y_train, axis=0)}

    def score(guess: np.ndarray) -> float:
        error = y_val - guess
        return float(np.mean(np.abs(error))) if name == "mae" else float(np.sqrt(np.mean(np.square(error))))

    which = min(candidates, key=lambda k: score(candidates[k]))
    value = np.atleast_1d(candidates[which])
    shown = f"{value[0]:.4g}" if len(value) == 1 else "per target"
    return Baseline(metric, score(candidates[which]), f"the training {which} ({shown}) for every row")
