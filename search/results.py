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


@dataclass(frozen=True)
class SweepResult:
    """All trials of a sweep so far, and how to rank them."""

    name: str
    engine: str
    direction: str  # "maximize" | "minimize"
    budget: int
    trials: tuple[TrialResult, ...] = ()

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
        ranked = self.ranked()
        return ranked[0] if ranked else None


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
