"""Optuna's terms for a parsed space: samplers, define-by-run suggestions and distributions.

Shared by the Optuna engine (ask/tell), the Ray engine (`OptunaSearch` with a define-by-run space),
so both sample conditionals the same way, and the sweep plots (which replay any engine's trials into
an Optuna study). Not an engine itself: the one translation of a space into Optuna's terms.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import optuna

from kerasweep.search.engines.internals import StudyWithEvidence
from kerasweep.search.space import CategoricalParam, FloatParam, IntParam, Space
from kerasweep.trainers.suggest import Suggestions

Evidence = tuple[tuple[dict[str, Any], tuple[float, ...]], ...]  # (values, objective values) of finished trials


@contextlib.contextmanager
def chosen_features() -> Iterator[None]:
    """Around kerasweep's own calls of Optuna features it chose on purpose: Optuna warns at each use of them
    (heartbeats, grouped multivariate TPE, `ask` on a heartbeat storage) and logs each study it opens. Those
    lines say nothing to a user, so they are silenced here only; Optuna's other warnings, and every warning
    of the user's own code, still show (a process-wide filter would hide the next release's breaks)."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
            yield
    finally:
        logger.setLevel(level)


def make_sampler(space: Space, worker: int = 0, workers: int = 1,
                 evidence: Evidence = ()) -> optuna.samplers.BaseSampler:
    """The space's sampler; each worker gets its own seed so parallel workers do not repeat each other.
    `evidence` (--warm-start: another sweep's complete trials) is what it learns from besides this
    sweep's own trials."""
    base = _base_sampler(space, worker, workers)
    if not evidence or space.search.sampler in ("grid", "random", "qmc"):  # these learn nothing from trials
        return base
    return WithEvidence(base, prior_trials(space, evidence))


def _base_sampler(space: Space, worker: int, workers: int) -> optuna.samplers.BaseSampler:
    seed = space.search.seed + worker
    name = space.search.sampler or "tpe"
    if name == "tpe":
        # Few random start-up trials (the default 10 wastes a small budget), grouped multivariate TPE
        # for conditional spaces, and constant liar so parallel workers spread out.
        startup = max(3, min(10, space.budget.trials // 4))
        with chosen_features():
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=startup, multivariate=True, group=True, constant_liar=workers > 1
            )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "nsga2":  # a genetic algorithm for several objectives (one works too)
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "grid":  # every combination once (Space.grid), in a seeded random order
        return _AskTellGrid(space.grid(), seed=seed)
    return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)


class _AskTellGrid(optuna.samplers.GridSampler):
    """Optuna's grid without its `study.stop()` once every config ran, which works inside `optimize` only:
    kerasweep's loops (ask and tell, Ray's searcher) stop at the budget, which is the grid's size."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        return None


def prior_trials(space: Space, evidence: Evidence) -> list[optuna.trial.FrozenTrial]:
    """Another sweep's complete trials as Optuna trials of this space (numbered below zero: they are
    nobody's trial number here)."""
    known = distributions(space)
    made = []
    for index, (values, objective_values) in enumerate(evidence):
        trial = optuna.trial.create_trial(params=values, distributions={k: known[k] for k in values},
                                          values=list(objective_values))
        trial.number = -1 - index
        made.append(trial)
    return made


class WithEvidence(optuna.samplers.BaseSampler):
    """A sampler that learns from prior trials as if they were the study's own, which Optuna's `add_trials`
    would do at the price of putting them in the study: kerasweep's trial numbers, budget and results
    are the study's trials, so the evidence stays outside it, shown only to the sampler."""

    def __init__(self, base: optuna.samplers.BaseSampler, prior: list[optuna.trial.FrozenTrial]) -> None:
        self.base, self.prior = base, prior

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return self.base.infer_relative_search_space(StudyWithEvidence(study, self.prior), trial)

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        return self.base.sample_relative(StudyWithEvidence(study, self.prior), trial, search_space)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self.base.sample_independent(StudyWithEvidence(study, self.prior), trial, param_name,
                                            param_distribution)

    def before_trial(self, study: Any, trial: Any) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


def distributions(space: Space) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna distributions for every searched param (for replaying trials, not for sampling)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, optuna.distributions.BaseDistribution] = {}
    for name, p in space.params.items():
        if isinstance(p, FloatParam):
            found[name] = FloatDistribution(p.low, p.high, log=p.log, step=p.step)
        elif isinstance(p, CategoricalParam):
            found[name] = CategoricalDistribution(p.choices)
        else:
            found[name] = IntDistribution(p.low, p.high, log=p.log, step=p.step or 1)
    return found


def sampler_problems(space: Space) -> list[str]:
    """What the space's Optuna sampler cannot search in it (both engines that sample through Optuna)."""
    problems = space.grid_problems() if space.search.sampler == "grid" else []
    if space.multi_objective and space.search.sampler == "cmaes":
        problems.append("search.sampler: cmaes ranks by one objective; with several use tpe (default), nsga2, random "
                        "or qmc")
    return problems


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Sample the active params in declaration order (parents before children, inactive ones absent)."""
    values: dict[str, Any] = {}
    for name, param in space.params.items():
        if space.is_active(name, values):
            values[name] = suggest_one(trial, name, param)
    return values


def suggest_one(trial: optuna.Trial, name: str, param: FloatParam | IntParam | CategoricalParam) -> Any:
    """One declared param, sampled by the trial."""
    if isinstance(param, FloatParam):
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return trial.suggest_int(name, param.low, param.high, log=param.log, step=param.step or 1)
    return trial.suggest_categorical(name, param.choices)


def live_suggestions(trial: optuna.Trial, space: Space) -> Suggestions:
    """What a define-by-run builder (of `trial` or `hp`) asks, sampled by this Optuna trial as it runs:
    conditionals and loops of layers just work. The space may fix a name (`fixed:`) or narrow its range
    (`params:`); every other name is sampled from the range the builder declares."""

    def ask(kind: str, name: str, declared: dict[str, Any]) -> Any:
        if name in space.fixed:
            return space.fixed[name]
        if name in space.params:
            return suggest_one(trial, name, space.params[name])
        if kind == "categorical":
            return trial.suggest_categorical(name, declared["choices"])
        log = bool(declared.get("log"))
        if kind == "int":
            return trial.suggest_int(name, declared["low"], declared["high"], step=1 if log else declared["step"] or 1,
                                     log=log)
        return trial.suggest_float(name, declared["low"], declared["high"], step=None if log else declared["step"],
                                   log=log)

    return Suggestions(ask)


