"""What a person sees during and after a sweep: a live progress line, then the top trials.

The engine calls `progress(result)` whenever it knows more (after each trial, or every second when
workers run in other processes); nothing here decides anything about the sweep.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from kerasweep.search.results import SweepResult, TrialState


class ConsoleReporter:
    """A rich live view for the CLI; use as a context manager around `run_sweep`."""

    def __init__(self, name: str, budget: int, metric: str, console: Console | None = None) -> None:
        self.name, self.budget, self.metric = name, budget, metric
        self.console = console or Console()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task(name, total=budget, states="", best="-", start=False)

    def __enter__(self) -> ConsoleReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def resumed(self, result: SweepResult) -> None:
        self.console.print(
            f"Resuming sweep [bold]{self.name}[/]: {result.done} of {self.budget} trials done, "
            f"{self.budget - result.done} to go."
        )
        self.progress(result)

    def already_done(self, result: SweepResult) -> None:
        self._progress.update(self._task, visible=False)
        self.console.print(f"Sweep [bold]{self.name}[/] already met its budget of {self.budget} trials.")

    def progress(self, result: SweepResult) -> None:
        best = result.best
        states = (
            f"pruned {result.count(TrialState.PRUNED)} failed {result.count(TrialState.FAILED)} "
            f"running {result.count(TrialState.RUNNING)}"
        )
        self._progress.start_task(self._task)
        self._progress.update(
            self._task, completed=min(result.done, self.budget), states=states,
            best=f"{best.value:.4f} (#{best.number})" if best else "-",
        )

    def finished(self, result: SweepResult) -> None:
        self.progress(result)


def summary_table(result: SweepResult, metric: str, searched: Iterable[str] | None = None, top: int = 5) -> Table:
    """The best trials with their values and searched params, for the end of a sweep and for `status`."""
    keys = set(searched) if searched else None  # none declared (a define-by-run builder): all it asked for
    table = Table(title=f"Top trials of {result.name} ({metric}, {result.direction})")
    table.add_column("trial", justify="right")
    table.add_column(metric, justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("params")
    for trial in result.ranked()[:top]:
        shown = {k: v for k, v in trial.params.items() if keys is None or k in keys}
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(shown.items()))
        table.add_row(str(trial.number), f"{trial.value:.4f}", str(trial.epochs), params)
    return table


def pareto_table(result: SweepResult, metrics: Sequence[str], searched: Iterable[str] | None = None) -> Table:
    """A multi-objective sweep's result: its Pareto front, each trial with every objective's value."""
    keys = set(searched) if searched else None
    goals = ", ".join(f"{m} {'max' if d == 'maximize' else 'min'}" for m, d in zip(metrics, result.directions))
    table = Table(title=f"Pareto front of {result.name} ({goals})")
    table.add_column("trial", justify="right")
    for metric in metrics:
        table.add_column(metric, justify="right")
    table.add_column("params")
    for trial in result.pareto_front():
        shown = {k: v for k, v in trial.params.items() if keys is None or k in keys}
        table.add_row(str(trial.number), *(f"{v:.4g}" for v in trial.values or ()),
                      ", ".join(f"{k}={_short(v)}" for k, v in sorted(shown.items())))
    return table


def counts_line(result: SweepResult) -> str:
    c = result.counts
    return (f"{result.done}/{result.budget} trials: {c['complete']} complete, {c['pruned']} pruned, "
            f"{c['failed']} failed, {c['running']} running")


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
