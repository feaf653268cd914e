"""Exceptions that steer the sweep: what the CLI reports, and what the trial runner does next.

- `UserInputError` (exit 2): the user can fix it (a space file, a flag, a data file). Raised before any
  compute and before anything is written to a store.
- `TrialFailed`: record this trial as failed and go on with the sweep.
- `TrialPruned`: the engine decided to stop this trial early; it counts towards the budget.
- `SweepAborted` (exit 1): stop the whole sweep with one clear message (for example every recent
  trial failed, so going on would only burn compute).
"""

from __future__ import annotations


class KerasweepError(Exception):
    """Base class for every error kerasweep raises on purpose."""

    exit_code = 1


class UserInputError(KerasweepError):
    """Bad input the user can fix; the message names the file, the field, the value and the rule."""

    exit_code = 2


class TrialFailed(KerasweepError):
    """One trial cannot finish (NaN loss, out of memory, a bug in a builder); the sweep goes on."""


class TrialPruned(KerasweepError):
    """The engine's pruner stopped this trial early."""


class DiskFull(KerasweepError):
    """The disk under the store (or a file a trial writes) filled up: no trial's fault, and every later write
    would fail too, so the sweep stops with one line instead of failing trial after trial."""


class TrackingUnreachable(KerasweepError):
    """The MLflow tracking server stopped answering: every later log would fail too."""


class SweepAborted(KerasweepError):
    """Going on would waste compute; the message says why and what to check."""


def yaml_problem(exc: Exception) -> str:
    """One line for a YAML parse error: where, then what (PyYAML's own message spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"not valid YAML{where}: {getattr(exc, 'problem', None) or str(exc).splitlines()[0]}"
