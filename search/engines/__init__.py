"""Engines: one module per search library behind one small interface.

An engine runs a sweep until its budget is met and reads back the trials of a sweep. Engines never
import each other; each converts the parsed `Space` into its own library's terms in one place.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from search.results import SweepResult
    from search.space import Space
    from search.sweep import SweepConfig

ProgressCallback = Callable[["SweepResult"], None]

#: engine name -> module implementing it (imported only when used: each pulls a heavy library).
ENGINES: dict[str, str] = {
    "optuna": "search.engines.optuna",
    "ray": "search.engines.ray",
    "keras-tuner": "search.engines.keras_tuner",
}


class Engine(Protocol):
    """What the orchestrator needs from an engine; modules implement these as functions."""

    def run(self, sweep: SweepConfig, on_progress: ProgressCallback) -> None:
        """Run trials until the budget of complete + pruned trials is met (resuming what exists)."""

    def results(self, sweep: SweepConfig) -> SweepResult:
        """Every trial of the sweep so far, from the engine's own storage."""

    def check(self, space: Space) -> list[str]:
        """What this engine cannot run in a space, one line per problem naming the field (optional)."""


def get_engine(name: str) -> Engine:
    """The engine module for `name`; raises KeyError listing the known engines."""
    if name not in ENGINES:
        raise KeyError(f"unknown engine {name!r}; expected one of {', '.join(ENGINES)}")
    return importlib.import_module(ENGINES[name])  # type: ignore[return-value]
