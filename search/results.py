"""The closed vocabulary every engine reports in: trial states and small result records."""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass, field
from typing import Any


class TrialState(str, enum.Enum):
    """Where a trial ended up. Complete and pruned trials count towards the budget; failed ones do not."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def counts_towards_budget(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class TrialResult:
    """One trial as the user sees it: number, state, objective value and the values it trained with."""

    number: int
    state: TrialState
    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    epochs: int = 0
    error: str | None = None
    intermediate: dict[int, float] = field(default_factory=dict)  # epoch -> objective metric
    values: tuple[float, ...] | None = None  # every objective's value (several objectives); `value` is the first


@dataclass(frozen=True)
class SweepResult:
    """All trials of a sweep so far, and how to rank them."""

    name: str
    engine: str
    direction: str  # "maximize" | "minimize"
    budget: int
    trials: tuple[TrialResult, ...] = ()
    directions: tuple[str, ...] = ()  # every objective's direction when there are several
    fixed: tuple[str, ...] = ()  # the space's fixed settings: in each trial's params, never searched

    @property
    def best_trial(self) -> TrialResult | None:
        """The best complete trial (Optuna's `study.best_trial`); None before one completes."""
        return self.best

    @property
    def best_value(self) -> float | None:
        return self.best.value if self.best else None

    @property
    def best_params(self) -> dict[str, Any]:
        """The best trial's searched values only (its `params` hold the fixed settings too)."""
        best = self.best
        return {k: v for k, v in best.params.items() if k not in self.fixed} if best else {}

    def trials_dataframe(self) -> Any:
        """One row per trial, as Optuna's `study.trials_dataframe()`: number, state, value, epochs, run id, and
        a `params_<name>` column per value (pandas)."""
        import pandas as pd

        rows = [{"number": t.number, "state": t.state.value, "value": t.value, "epochs": t.epochs,
                 "mlflow_run_id": t.mlflow_run_id, **{f"params_{k}": v for k, v in sorted(t.params.items())}}
                for t in sorted(self.trials, key=lambda t: t.number)]
        return pd.DataFrame(rows, columns=None if rows else ["number", "state", "value", "epochs", "mlflow_run_id"])

    def count(self, state: TrialState) -> int:
        return sum(1 for t in self.trials if t.state is state)

    @property
    def counts(self) -> dict[str, int]:
        return {state.value: self.count(state) for state in TrialState}

    @property
    def done(self) -> int:
        """Trials that count towards the budget (complete + pruned)."""
        return sum(1 for t in self.trials if t.state.counts_towards_budget)

    def ranked(self) -> list[TrialResult]:
        """Completed trials, best first."""
        complete = [t for t in self.trials if t.state is TrialState.COMPLETE and t.value is not None]
        return sorted(complete, key=lambda t: t.value, reverse=self.direction == "maximize")

    @property
    def best(self) -> TrialResult | None:
        """The best complete trial by the (first) objective."""
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def pareto_front(self) -> list[TrialResult]:
        """The complete trials no other complete trial dominates (no worse on every objective, better on
        one), in trial order; with one objective, the best trial alone."""
        if len(self.directions) < 2:
            return [self.best] if self.best else []
        signs = [1.0 if d == "maximize" else -1.0 for d in self.directions]
        scored = [(t, [s * v for s, v in zip(signs, t.values)]) for t in self.trials
                  if t.state is TrialState.COMPLETE and t.values and len(t.values) == len(signs)]

        def dominates(a: list[float], b: list[float]) -> bool:
            return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

        front = [t for t, v in scored if not any(dominates(w, v) for _, w in scored)]
        return sorted(front, key=lambda t: t.number)


def failure_streak(errors: list[str], limit: int) -> str | None:
    """The message that stops a sweep when its last `limit` trials all failed (`errors`: the most recent
    trials' errors, oldest first, "" for one that did not fail); None while the sweep may go on.
    The same words on every engine."""
    recent = errors[-limit:]
    if limit < 1 or len(recent) < limit or not all(recent):
        return None
    common, times = collections.Counter(e.split(":")[0] for e in recent).most_common(1)[0]
    return (f"the last {limit} trials all failed (most often: {common!r}, {times}x; last: {recent[-1]}); fix "
            "the cause and re-run the same command to resume")
