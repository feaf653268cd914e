"""Engines: one module per search library behind one small interface, found through a registry.

An engine translates the parsed `Space` into its library's terms and drives that library's loop; the
trial's life (MLflow run, epoch hook, close, abandon, failure streak, progress) is `search.lifecycle`'s.
Engines never import each other. A new engine is one module and one `register` line.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kerasweep.search.config import SweepConfig
    from kerasweep.search.results import SweepResult
    from kerasweep.search.space import Space

ProgressCallback = Callable[["SweepResult"], None]

#: engine name -> module implementing it (imported only when used: each pulls a heavy library).
ENGINES: dict[str, str] = {
    "optuna": "kerasweep.search.engines.optuna",
    "ray": "kerasweep.search.engines.ray",
    "keras-tuner": "kerasweep.search.engines.keras_tuner",
}
BUILT_IN = frozenset(ENGINES)
#: more engines, `name=package.module` separated by commas (a team's own engine, the tests' random one)
ENGINES_ENV = "KERASWEEP_ENGINES"


class Engine(Protocol):
    """What the orchestrator needs from an engine; modules implement it with constants and functions."""

    SAMPLERS: tuple[str, ...]  # the samplers it runs; the first is its default
    DEFAULT_PRUNER: str | None  # when the space names none (None: the sampler prunes itself)
    Options: type  # a frozen dataclass of the engine's own options, with defaults (may have no fields)

    def describe(self, options: Any) -> str:
        """How trials run in parallel, for the sweep's first line ("2 worker(s)")."""

    def check(self, space: Space, options: Any) -> list[str]:
        """What this engine cannot run (space or options), one line per problem naming the field."""

    def check_stores(self, sweep: SweepConfig, logged: set[int], parent_exists: bool) -> str | None:
        """Whether the engine's own state and MLflow (`logged`: trial numbers) tell the same story."""

    def run(self, sweep: SweepConfig, on_progress: ProgressCallback) -> None:
        """Run trials until the budget of complete + pruned trials is met (resuming what exists)."""

    def results(self, sweep: SweepConfig) -> SweepResult:
        """Every trial of the sweep so far, from the engine's own storage."""


def register(name: str, module: str) -> None:
    """Make `module` (a dotted path implementing `Engine`) available as `--engine name`."""
    ENGINES[name] = module


for _entry in filter(None, os.environ.get(ENGINES_ENV, "").split(",")):
    _name, _, _module = _entry.partition("=")
    register(_name.strip(), _module.strip())


def get_engine(name: str) -> Engine:
    """The engine module for `name`; raises KeyError listing the known engines.

    A registered engine's module is imported as a user's builder is: from the project folder too (the
    current directory, as `python -m` would), so `KERASWEEP_ENGINES=mine=myproject.engine` works from
    the `kerasweep` command. One that cannot be imported is bad input naming it.
    """
    if name not in ENGINES:
        raise KeyError(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)}")
    if name not in BUILT_IN and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(ENGINES[name])  # type: ignore[return-value]
    except ImportError as exc:
        if name in BUILT_IN:
            raise
        from kerasweep.search.errors import UserInputError

        raise UserInputError(f"{ENGINES_ENV}: engine {name!r}: cannot import {ENGINES[name]!r} ({exc}); name a "
                             "module importable from the project folder") from None


def engines_with(attribute: str) -> list[str]:
    """The engines that declare `attribute` true (for example MULTI_OBJECTIVE)."""
    return [name for name in ENGINES if getattr(get_engine(name), attribute, False)]


def engines_taking(option: str) -> list[str]:
    """The engines whose options include `option` (for an error that says where a flag belongs)."""
    from dataclasses import fields

    found = []
    for name in ENGINES:
        options: Any = get_engine(name).Options
        if option in {f.name for f in fields(options)}:
            found.append(name)
    return found
