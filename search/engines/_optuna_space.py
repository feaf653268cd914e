"""Optuna's terms for a parsed space: samplers and define-by-run suggestions.

Shared by the Optuna engine (ask/tell) and the Ray engine (`OptunaSearch` with a define-by-run
space), so both sample conditionals the same way. Not an engine itself.
"""

from __future__ import annotations

from typing import Any

import optuna

from search.space import CategoricalParam, FloatParam, IntParam, Space


def make_sampler(space: Space, worker: int = 0, workers: int = 1) -> optuna.samplers.BaseSampler:
    """The space's sampler; each worker gets its own seed so parallel workers do not repeat each other."""
    seed = space.search.seed + worker
    name = space.search.sampler or "tpe"
    if name == "tpe":
        # Few random start-up trials (the default 10 wastes a small budget), grouped multivariate TPE
        # for conditional spaces, and constant liar so parallel workers spread out.
        startup = max(3, min(10, space.budget.trials // 4))
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=True, group=True, constant_liar=workers > 1
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Sample the active params in declaration order (parents before children, inactive ones absent)."""
    values: dict[str, Any] = {}
    for name, param in space.params.items():
        if not space.is_active(name, values):
            continue
        if isinstance(param, FloatParam):
            values[name] = trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, IntParam):
            values[name] = trial.suggest_int(name, param.low, param.high, log=param.log, step=param.step or 1)
        elif isinstance(param, CategoricalParam):
            values[name] = trial.suggest_categorical(name, param.choices)
    return values


