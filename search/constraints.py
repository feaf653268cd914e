"""Constraints at export (`--where "latency_ms < 5"`): the best trial that fits a production budget.

A constraint names a metric the trial run holds: one of the model's measures (catalog.MEASURES, logged
when a trial ends) or a metric training logs for the task, read at the trial's best epoch (the epoch its
objective picked, as the exported model is that epoch's).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kerasweep.search.errors import UserInputError
from kerasweep.search.results import TrialResult
from kerasweep.trainers.catalog import MEASURES, task_metrics

PATTERN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")
OPERATORS: dict[str, Callable[[float, float], bool]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                                       ">=": operator.ge}


@dataclass(frozen=True)
class Constraint:
    """`metric op bound`, for example `model_params < 200000`."""

    metric: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    def holds(self, value: float | None) -> bool:
        return value is not None and math.isfinite(value) and OPERATORS[self.op](value, self.bound)

    def excess(self, value: float | None) -> float:
        """How far `value` misses the bound, relative to it (0 when it holds): ranks the closest trial."""
        if value is None or not math.isfinite(value):
            return math.inf
        if self.holds(value):
            return 0.0
        return abs(value - self.bound) / max(abs(self.bound), 1e-12)


def parse_where(texts: Sequence[str], task: str) -> list[Constraint]:
    """The `--where` constraints, checked before anything is read; one line naming the bad one."""
    known = (*MEASURES, *task_metrics(task))
    found = []
    for text in texts:
        match = PATTERN.fullmatch(text)
        if match is None:
            raise UserInputError(f"--where: {text!r} is not a constraint; expected METRIC < NUMBER (or <=, >, >=), "
                                 'for example "latency_ms < 5"')
        metric, op, bound = match.groups()
        if metric not in known:
            raise UserInputError(f"--where: unknown metric {metric!r} in {text!r}; expected one of {', '.join(known)}")
        found.append(Constraint(metric, op, float(bound)))
    return found


def measured(tracker: Any, trial: TrialResult, metrics: set[str], maximize: bool,
             objective: str | None = None) -> dict[str, float]:
    """The trial run's values of `metrics`: measures as logged, training metrics at its best epoch (by
    the trial's reported curve, else by the run's curve of `objective`, the first objective's metric:
    Optuna keeps no curve for a multi-objective trial)."""
    logged = tracker.latest_metrics(trial.mlflow_run_id)
    values = {m: logged[m] for m in metrics & set(MEASURES) if m in logged}
    history = trial.intermediate
    if not history and objective is not None and metrics - set(MEASURES):
        history = tracker.metric_history(trial.mlflow_run_id, objective)
    best = (max if maximize else min)(history, key=history.get) if history else None
    for metric in metrics - set(MEASURES):
        steps = tracker.metric_history(trial.mlflow_run_id, metric)
        if best in steps:
            values[metric] = steps[best]
    return values


def meeting(trials: Sequence[TrialResult], constraints: Sequence[Constraint], tracker: Any, maximize: bool,
            sweep: str, objective: str | None = None) -> list[TrialResult]:
    """The trials (in the order given) that meet every constraint; none: one line naming the closest."""
    metrics = {c.metric for c in constraints}
    found = [(t, measured(tracker, t, metrics, maximize, objective)) for t in trials if t.mlflow_run_id]
    kept = [t for t, values in found if all(c.holds(values.get(c.metric)) for c in constraints)]
    if kept:
        return kept
    wanted = " and ".join(map(str, constraints))
    if not found:
        raise UserInputError(f"--where: sweep {sweep!r} has no complete trial to check against {wanted}")
    closest, values = min(found, key=lambda item: sum(c.excess(item[1].get(c.metric)) for c in constraints))
    shown = ", ".join(f"{c.metric} {values[c.metric]:g}" if c.metric in values else f"{c.metric} not measured"
                      for c in constraints)
    raise UserInputError(f"--where: no complete trial of sweep {sweep!r} meets {wanted}; closest: trial "
                         f"{closest.number} ({shown})")
