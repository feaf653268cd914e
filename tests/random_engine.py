"""A random-search engine in a few dozen lines, registered by the tests (KERASWEEP_ENGINES): the proof
that an engine is only the translation of a space and the driving of a loop, with the trial's life
left to `search.lifecycle`. It passes the whole engine contract suite (tests/test_engine_contract.py)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from kerasweep.search.interrupts import stop_reason
from kerasweep.search.lifecycle import FailureStreak, Progress, TrialLife, TrialStart, out_of_time, results_from_mlflow
from kerasweep.search.space import CategoricalParam, FloatParam, Space
from kerasweep.search.trial import builder_style, resolve_values, run_trial

SAMPLERS = ("random",)
DEFAULT_PRUNER = None  # every trial trains its whole budget
MULTI_OBJECTIVE = True  # random search ranks nothing: several objectives are the results' business


@dataclass(frozen=True)
class Options:
    """No options of its own: one trial at a time."""


def describe(options: Options) -> str:
    return "one trial at a time"


def check(space: Space, options: Options) -> list[str]:
    return [] if builder_style(space) == "values" else ["model: the random engine samples declared params only"]


def check_stores(sweep: Any, logged: set[int], parent_exists: bool) -> str | None:
    return None  # MLflow is its only store


def sample(space: Space, rng: random.Random, given: dict[str, Any]) -> dict[str, Any]:
    """Active params in declaration order, uniformly (log-uniformly where `log: true`), except those
    `given` (a first trial's: --warm-start, --enqueue, the declared defaults)."""
    values: dict[str, Any] = {}
    for name, p in space.params.items():
        if not space.is_active(name, values):
            continue
        if name in given:
            values[name] = given[name]
        elif isinstance(p, CategoricalParam):
            values[name] = rng.choice(p.choices)
        else:
            values[name] = _number(p, rng)
    return values


def _number(p: Any, rng: random.Random) -> float | int:
    low, high = (math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)
    value = math.exp(rng.uniform(low, high)) if p.log else rng.uniform(low, high)
    if isinstance(p, FloatParam):
        return value
    step = p.step or 1
    return min(p.high, p.low + step * round((value - p.low) / step))


def run(sweep: Any, on_progress: Any) -> None:
    life = TrialLife(sweep)
    life.fail_orphans()
    progress, streak = Progress(on_progress, lambda: results(sweep)), FailureStreak(sweep.max_failures_in_a_row)
    number = life.next_number()
    rng = random.Random(sweep.space.search.seed + number)
    first = [p for p in (*sweep.first_points, sweep.space.default_values()) if p] if number == 0 else []
    while results(sweep).done < sweep.space.budget.trials and not out_of_time(sweep):
        values = resolve_values(sweep.space, sample(sweep.space, rng, first.pop(0) if first else {}))
        run_id, files = life.open(TrialStart(number, values)), life.files(number)
        try:
            outcome = run_trial(sweep.space, values, [life.epoch_logger(run_id)], files, debug=sweep.debug)
        except KeyboardInterrupt:
            life.abandon(run_id, stop_reason())
            raise
        life.close(run_id, outcome, files=files)
        number += 1
        streak.add(outcome.error)
        streak.check()
        progress()


def results(sweep: Any) -> Any:
    return results_from_mlflow(sweep)
