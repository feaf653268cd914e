"""The life of one trial, written once for every engine: open its run, log each epoch, close, abandon.

An engine asks its library for values and drives its library's loop; everything a trial does in the
stores around training happens here, the same way on every engine:

- `TrialLife.open` starts the trial's MLflow run with the retry, resume and debug tags, and copies the
  curve of the run it continues (a retry from a backup, a promoted Hyperband round);
- `TrialLife.epoch_logger` is the per-epoch hook that logs metrics;
- `TrialLife.close` records how the trial ended (state, value, checkpoint, error) and tidies its files:
  the checkpoint once MLflow holds it, the resumable copy unless a retry will continue from it;
- `TrialLife.abandon` ends a trial that will not finish (Ctrl-C, SIGTERM, a dead worker) as failed, and
  `TrialLife.fail_orphans` does so for runs a dead process left RUNNING, with the reasons below;
- `FailureStreak` stops a sweep after N failed trials in a row; `Progress` refreshes the live view at
  most every two seconds; `results_from_mlflow` reads a sweep's trials back for engines whose own
  state is not the record.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerasweep.search.errors import SweepAborted
from kerasweep.search.interrupts import deferred_interrupts, stop_reason
from kerasweep.search.results import SweepResult, TrialState, failure_streak
from kerasweep.search.tracking import DEBUG_TAG, ORPHAN_REASON, RESUMED_TAG, RETRY_TAG, TRIAL_TAG, Tracker, tracking_uri_for
from kerasweep.search.trial import EpochHook, TrialFiles, TrialOutcome
from kerasweep.trainers.catalog import ALL_METRICS
from kerasweep.trainers.fit import BackupPolicy, ResumePoint

if TYPE_CHECKING:
    from kerasweep.search.config import SweepConfig
    from kerasweep.trainers.suggest import Suggestions

__all__ = [
    "ORPHAN_REASON", "FailureStreak", "Progress", "TrialFiles", "TrialLife", "TrialStart", "out_of_time",
    "results_from_mlflow", "stop_reason", "tracker_of",
]

PROGRESS_EVERY_S = 2.0  # reading every trial back costs; the live view is refreshed at most this often


@dataclass(frozen=True)
class TrialStart:
    """What a trial's run opens with: its number and values, and where it continues from, if anywhere."""

    number: int
    values: Mapping[str, Any]
    retry_of: int | None = None  # the number of the trial this one retries (same values)
    resume: ResumePoint | None = None  # the saved model its training continues from
    source_run: str | None = None  # the MLflow run whose first `resume.epoch` epochs this run starts with
    tags: Mapping[str, str] = field(default_factory=dict)  # the engine's own (its library's trial id, ...)


@functools.lru_cache(maxsize=8)
def _tracker(tracking_uri: str, artifact_root: Path | None, pid: int) -> Tracker:
    return Tracker(tracking_uri, artifact_root)


def tracker_of(sweep: SweepConfig) -> Tracker:
    """The sweep's MLflow tracker, one per process (opening a store costs a second)."""
    uri = sweep.tracking_uri or tracking_uri_for(sweep.store.root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        _tracker.cache_clear()  # the store was removed (a notebook's `rm -rf runs`): open it afresh
    return _tracker(uri, sweep.artifact_root, os.getpid())


class TrialLife:
    """One sweep's trial bookkeeping in MLflow and the store; every engine's trials go through it."""

    def __init__(self, sweep: SweepConfig, tracker: Tracker | None = None) -> None:
        self.sweep = sweep
        self.tracker = tracker or tracker_of(sweep)

    def files(self, number: int, tensorboard_run: str | None = None) -> TrialFiles:
        """The store's files for trial `number` (engines that keep their own folders build `TrialFiles`)."""
        store, name = self.sweep.store, self.sweep.name
        return TrialFiles(
            checkpoint=store.checkpoint(name, number),
            tensorboard=store.tensorboard(name, tensorboard_run or f"trial-{number}"),
            backup=BackupPolicy(store.backups(name, number), self.sweep.checkpoint_every_s),
        )

    def open(self, start: TrialStart) -> str:
        """Open the trial's nested run (params, tags) and copy the curve it continues; returns the run id."""
        tags = dict(start.tags)
        if self.sweep.debug:
            tags[DEBUG_TAG] = "true"
        if start.retry_of is not None:
            tags[RETRY_TAG] = str(start.retry_of)
        if start.retry_of is not None and start.resume is not None:
            tags[RESUMED_TAG] = str(start.resume.epoch)
        run_id = self.tracker.start_trial(self.sweep.parent_run_id, self.sweep.name, start.number,
                                          dict(start.values), extra_tags=tags)
        if start.resume is not None and start.source_run:
            self.tracker.copy_epochs(start.source_run, run_id, start.resume.epoch, ALL_METRICS)
        return run_id

    def epoch_logger(self, run_id: str) -> EpochHook:
        """The hook that logs each finished epoch's metrics to the trial's run (never stops training)."""

        def log_epoch(epoch: int, metrics: dict[str, float]) -> bool:
            self.tracker.log_epoch(run_id, epoch, metrics)
            return False

        return log_epoch

    @deferred_interrupts()
    def close(self, run_id: str, outcome: TrialOutcome, *, asked: Suggestions | None = None,
              files: TrialFiles | None = None, keep_checkpoint: bool = False, retry_coming: bool = False) -> None:
        """Record how the trial ended, then tidy its files.

        `asked`: what a define-by-run builder asked for, logged as params under its own names.
        `keep_checkpoint`: the saved model stays (a Hyperband round a later round continues); else it is
        removed once MLflow holds it (complete) or since nobody needs it (pruned, failed).
        `retry_coming`: a failed trial's resumable copy stays for the retry that continues from it.
        """
        if asked is not None:
            self.tracker.add_params(run_id, asked.values)
        checkpoint = outcome.checkpoint if outcome.state is TrialState.COMPLETE else None
        self.tracker.finish_trial(run_id, outcome.state, outcome.value, checkpoint, outcome.error, outcome.details,
                                  outcome.measures, outcome.values if outcome.state is TrialState.COMPLETE else None,
                                  outcome.repeat_values, outcome.runtime)
        if files is None:
            return
        if files.checkpoint is not None and not keep_checkpoint:
            files.checkpoint.unlink(missing_ok=True)
        if files.backup is not None and not (outcome.state is TrialState.FAILED and retry_coming):
            shutil.rmtree(files.backup.folder, ignore_errors=True)
        if files.checkpoint is not None:
            remove_if_empty(files.checkpoint.parent)

    @deferred_interrupts()
    def abandon(self, run_id: str | None, reason: str) -> None:
        """End a trial that will not finish (Ctrl-C, SIGTERM, its worker died) as failed, if still open."""
        if run_id and self.tracker.is_running(run_id):
            self.tracker.finish_trial(run_id, TrialState.FAILED, error=reason)

    def log_lost(self, number: int, values: Mapping[str, Any], reason: str) -> None:
        """A failed run for a trial that ended before its run was opened, so both stores list it."""
        run_id = self.tracker.start_trial(self.sweep.parent_run_id, self.sweep.name, number, dict(values))
        self.tracker.finish_trial(run_id, TrialState.FAILED, error=reason)

    def fail_orphans(self, keep: Callable[[int | None], bool] = lambda number: False,
                     reason: str = ORPHAN_REASON) -> int:
        """Runs a dead process left RUNNING end failed, but those whose trial number `keep` names; returns
        how many. `keep` is asked after the runs were read, so it sees every trial those runs belong to."""
        return self.tracker.fail_unfinished_trials(self.sweep.parent_run_id, reason, keep=keep)

    def next_number(self) -> int:
        """The next trial number, for engines whose library numbers trials its own way."""
        runs = self.tracker.trial_runs(self.sweep.parent_run_id)
        return 1 + max((int(r.data.tags[TRIAL_TAG]) for r in runs if TRIAL_TAG in r.data.tags), default=-1)


def out_of_time(sweep: SweepConfig) -> bool:
    """Whether the run's time budget (`budget.minutes`) is spent: no new trial starts then, but for the
    sweep's first (the clock runs from the command's start, and on a loaded machine loading Keras in a
    fresh worker took longer than a short budget: the sweep ended with nothing to export)."""
    return sweep.deadline is not None and time.time() >= sweep.deadline


def remove_if_empty(folder: Path) -> None:
    """Remove a trial's folder once nothing in it is needed (a retry's copy keeps it)."""
    try:
        folder.rmdir()
    except OSError:  # not empty, or already gone
        pass


class FailureStreak:
    """Stops a sweep after `limit` trials in a row failed, with the same message on every engine."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.errors: list[str] = []

    def add(self, error: str | None) -> None:
        """Record one ended trial: its error, or None when it did not fail."""
        self.errors = [*self.errors, error or ""][-max(self.limit, 1):]

    @property
    def message(self) -> str | None:
        """Why the sweep stops now; None while it may go on."""
        return failure_streak(self.errors, self.limit)

    def check(self) -> None:
        """Raise SweepAborted once the streak reached the limit."""
        if self.message:
            raise SweepAborted(self.message)

    @classmethod
    def of(cls, result: SweepResult, limit: int) -> FailureStreak:
        """The streak at the end of a sweep's trials, in trial order (for engines that read it back)."""
        streak = cls(limit)
        for trial in sorted(result.trials, key=lambda t: t.number):
            if trial.state is not TrialState.RUNNING:
                streak.add(trial.error or "failed" if trial.state is TrialState.FAILED else None)
        return streak


class Progress:
    """Hands the live view a fresh `SweepResult` at most every `every_s` seconds (reading it costs)."""

    def __init__(self, on_progress: Callable[[SweepResult], None], read: Callable[[], SweepResult],
                 every_s: float = PROGRESS_EVERY_S) -> None:
        self.on_progress, self.read, self.every_s = on_progress, read, every_s
        self.shown = float("-inf")

    def __call__(self, force: bool = False) -> None:
        if force or time.monotonic() - self.shown > self.every_s:
            self.on_progress(self.read())
            self.shown = time.monotonic()


def results_from_mlflow(sweep: SweepConfig) -> SweepResult:
    """A sweep's trials as recorded in MLflow, for engines whose own state is not the record (Ray's
    driver and KerasTuner write MLflow as trials happen)."""
    tracker = tracker_of(sweep)
    parent = sweep.parent_run_id or tracker.find_sweep_run(sweep.space.name, sweep.name)
    found = tracker.trial_results(parent, sweep.space.objective.metric) if parent else []
    return SweepResult(sweep.name, sweep.engine, sweep.space.objective.direction, sweep.space.budget.trials,
                       tuple(found), directions_of(sweep.space))


def directions_of(space: Any) -> tuple[str, ...]:
    """Every objective's direction for a multi-objective sweep; empty for one objective."""
    return tuple(o.direction for o in space.all_objectives) if space.multi_objective else ()
