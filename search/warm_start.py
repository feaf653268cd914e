"""First trials from what is already known: `--enqueue FILE` and `--warm-start SWEEP`.

Both give a new sweep the values its first trials train, in order, before its sampler picks: an
exported config or a YAML list of param sets (`--enqueue`), or the best trial of another sweep in the
same store, of any engine (`--warm-start`). Every value is checked against the new space before any
work: a value outside a range or not among the choices, or a name the space does not search, is one
line naming it. The new sweep's budget counts only its own trials (the first ones included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerasweep.search.errors import UserInputError
from kerasweep.search.results import TrialState
from kerasweep.search.safe_yaml import read_yaml
from kerasweep.search.space import CategoricalParam, FloatParam, Space


@dataclass(frozen=True)
class WarmStart:
    """The first trials' values, and where they came from (recorded on the sweep's parent run)."""

    points: tuple[dict[str, Any], ...] = ()
    source: dict[str, str] | None = None  # for example {"warm_start": "cnn-monday"}
    # --warm-start: the old sweep's complete trials, (values, objective values), for the sampler to learn from
    evidence: tuple[tuple[dict[str, Any], tuple[float, ...]], ...] = ()


def fit_point(space: Space, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The values of `values` that this space searches, checked; conditionals that do not hold are
    dropped, names the space fixes are left to it, and any other name is an error."""
    unknown = sorted(set(values) - set(space.params) - set(space.fixed))
    if unknown:
        raise UserInputError(f"{where}: {', '.join(map(repr, unknown))} not searched by space {space.name!r}; "
                             f"it searches {', '.join(space.params) or 'nothing'}")
    point: dict[str, Any] = {}
    for name, param in space.params.items():
        if name not in values or not space.is_active(name, point):
            continue
        value = values[name]
        problem = _outside(param, value)
        if problem:
            raise UserInputError(f"{where}: {name}: {value!r} is outside the space ({problem})")
        point[name] = value
    return point


def _outside(param: Any, value: Any) -> str | None:
    """Why `value` cannot be sampled from `param`, or None."""
    if isinstance(param, CategoricalParam):
        return None if any(value == c and type(value) is type(c) for c in param.choices) else \
            f"expected one of {param.choices}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"expected a number in [{param.low}, {param.high}]"
    if not isinstance(param, FloatParam) and value != int(value):
        return f"expected a whole number in [{param.low}, {param.high}]"
    if not param.low <= value <= param.high:
        return f"expected a number in [{param.low}, {param.high}]"
    steps = (value - param.low) / param.step if param.step else 0.0
    if not math.isclose(steps, round(steps), abs_tol=1e-9):
        return f"expected {param.low} plus a multiple of step {param.step}"
    return None


def from_file(space: Space, path: Path) -> WarmStart:
    """An exported config (its `params`) or a YAML list of param sets, in the order given."""
    document = read_yaml(path)
    if isinstance(document, dict) and isinstance(document.get("params"), dict):
        sets = [document["params"]]
    elif isinstance(document, list) and document and all(isinstance(entry, dict) for entry in document):
        sets = document
    else:
        raise UserInputError(f"{path}: expected an exported config (with params:) or a YAML list of param sets, "
                             "for example [{learning_rate: 0.01, optimizer: adam}]")
    where = (lambda i: f"{path}: params") if len(sets) == 1 and isinstance(document, dict) else \
        (lambda i: f"{path}: [{i}]")
    return WarmStart(tuple(fit_point(space, values, where(i)) for i, values in enumerate(sets)),
                     {"enqueue": str(path)})


def from_sweep(space: Space, sweep: str, store: Path | str | None) -> WarmStart:
    """The best complete trial of `sweep` (same store, any engine) as the first trial."""
    from kerasweep.search.sweep import load_config, sweep_results

    old = load_config(sweep, store)
    if (old.space.objective.metric, old.space.objective.direction) != (space.objective.metric,
                                                                       space.objective.direction):
        raise UserInputError(f"--warm-start: sweep {sweep!r} ranked its trials by {old.space.objective.metric} "
                             f"({old.space.objective.direction}), this space by {space.objective.metric} "
                             f"({space.objective.direction}); its best is not this sweep's best")
    best = sweep_results(old).best
    if best is None:
        raise UserInputError(f"--warm-start: sweep {sweep!r} has no complete trial to start from")
    point = fit_point(space, best.params, f"--warm-start: sweep {sweep!r}, trial {best.number}")
    evidence = _evidence(space, old.space, sweep_results(old).trials)
    return WarmStart((point,), {"warm_start": sweep, "warm_start_trial": str(best.number),
                                "warm_start_evidence": str(len(evidence))}, evidence)


def _evidence(space: Space, old: Space, trials: Any) -> tuple[tuple[dict[str, Any], tuple[float, ...]], ...]:
    """The old sweep's complete trials as prior evidence for this space's sampler: those whose values this
    space can sample (a narrower range leaves some out), when both sweeps rank by the same objectives."""
    same = [(o.metric, o.direction) for o in old.all_objectives] == [(o.metric, o.direction) for o in space.all_objectives]
    if not same:
        return ()
    found = []
    for trial in trials:
        if trial.state is not TrialState.COMPLETE or trial.value is None:
            continue
        try:
            point = fit_point(space, trial.params, "evidence")
        except UserInputError:
            continue  # outside this space: the sampler could not have proposed it
        if set(point) == {name for name in space.params if space.is_active(name, point)}:  # every active value known
            found.append((point, tuple(trial.values) if trial.values else (float(trial.value),)))
    return tuple(found)


def warm_start(space: Space, store: Path | str | None, enqueue: Path | None = None,
               sweep: str | None = None) -> WarmStart:
    """The first trials for `--warm-start SWEEP` (its best first) and `--enqueue FILE` (then these)."""
    parts = ([from_sweep(space, sweep, store)] if sweep else []) + ([from_file(space, enqueue)] if enqueue else [])
    if parts and not space.params:
        raise UserInputError("--warm-start / --enqueue: the space declares no params (a define-by-run builder "
                             "declares its own); there is nothing to start from")
    source: dict[str, str] = {}
    for part in parts:
        source.update(part.source or {})
    return WarmStart(tuple(point for part in parts for point in part.points), source or None,
                     tuple(found for part in parts for found in part.evidence))
