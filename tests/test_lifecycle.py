"""The trial's life, the failure streak, the progress throttle and the Ray budget searcher, with fakes:
the logic every engine shares, checked in milliseconds (the engines' real runs: test_engine_contract.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kerasweep.search.config import SweepConfig
from kerasweep.search.errors import SweepAborted
from kerasweep.search.lifecycle import FailureStreak, Progress, TrialLife, TrialStart
from kerasweep.search.results import SweepResult, TrialResult, TrialState
from kerasweep.search.space import Space
from kerasweep.search.store import Store
from kerasweep.search.trial import TrialFiles, TrialOutcome
from kerasweep.trainers.fit import BackupPolicy, ResumePoint

SPACE = Space.model_validate({"name": "s", "model": "mlp", "data": "iris", "budget": {"trials": 3, "epochs": 4},
                              "params": {"units": {"type": "int", "low": 8, "high": 16}}})


class FakeTracker:
    """Records what the lifecycle asks of MLflow."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.running: set[str] = set()
        self.numbers: dict[str, int] = {}  # run id -> trial number
        self.runs = 0

    def start_trial(self, parent: str, sweep: str, number: int, params: dict, extra_tags: dict | None = None) -> str:
        self.runs += 1
        run_id = f"run-{self.runs}"
        self.running.add(run_id)
        self.numbers[run_id] = number
        self.calls.append(("start", (number, params, extra_tags or {})))
        return run_id

    def copy_epochs(self, source: str, run_id: str, epochs: int, keys: Any) -> None:
        self.calls.append(("copy", (source, run_id, epochs)))

    def log_epoch(self, run_id: str, epoch: int, metrics: dict) -> None:
        self.calls.append(("epoch", (run_id, epoch, metrics)))

    def add_params(self, run_id: str, params: dict) -> None:
        self.calls.append(("params", (run_id, params)))

    def finish_trial(self, run_id: str, state: TrialState, value: float | None = None, checkpoint: Path | None = None,
                     error: str | None = None, details: str | None = None, measures: dict | None = None,
                     values: tuple | None = None, repeats: tuple = (), runtime: dict | None = None) -> None:
        self.running.discard(run_id)
        self.calls.append(("finish", (run_id, state, value, checkpoint, error)))
        self.calls.append(("measures", (run_id, measures or {})))
        if runtime:
            self.calls.append(("runtime", (run_id, runtime)))
        if repeats:
            self.calls.append(("repeats", (run_id, repeats)))

    def is_running(self, run_id: str) -> bool:
        return run_id in self.running

    def fail_unfinished_trials(self, parent: str, reason: str, keep: Any = lambda number: False) -> int:
        stale = [run_id for run_id in sorted(self.running) if not keep(self.numbers[run_id])]
        for run_id in stale:
            self.finish_trial(run_id, TrialState.FAILED, error=reason)
        return len(stale)

    def trial_runs(self, parent: str) -> list:
        return []

    def named(self, kind: str) -> list[Any]:
        return [args for name, args in self.calls if name == kind]


def _life(tmp_path: Path, **config: Any) -> tuple[TrialLife, FakeTracker]:
    tracker = FakeTracker()
    sweep = SweepConfig(space=SPACE, name="s", store=Store(tmp_path), parent_run_id="parent", **config)
    return TrialLife(sweep, tracker), tracker  # type: ignore[arg-type]


def test_open_tags_a_retry_that_resumes_and_copies_the_curve_it_continues(tmp_path: Path) -> None:
    life, tracker = _life(tmp_path, debug=True)
    resume = ResumePoint(tmp_path / "epoch-2.keras", 2)
    run_id = life.open(TrialStart(7, {"lr": 0.1}, retry_of=3, resume=resume, source_run="run-old", tags={"x": "y"}))
    number, params, tags = tracker.named("start")[0]
    # Rule: every engine's trial run carries the same tags: retry, resumed epoch, debug, and its own
    assert (number, params) == (7, {"lr": 0.1})
    assert tags == {"x": "y", "kerasweep.debug": "true", "kerasweep.retry_of": "3", "kerasweep.resumed_from_epoch": "2"}
    # Rule: the continued run starts with the first epochs of the run it continues
    assert tracker.named("copy") == [("run-old", run_id, 2)]


def test_a_fresh_trial_gets_no_retry_tags_and_copies_nothing(tmp_path: Path) -> None:
    life, tracker = _life(tmp_path)
    life.open(TrialStart(0, {}))
    assert tracker.named("start")[0][2] == {} and not tracker.named("copy")


def test_the_epoch_logger_logs_and_never_stops_training(tmp_path: Path) -> None:
    life, tracker = _life(tmp_path)
    hook = life.epoch_logger("run-1")
    assert hook(1, {"loss": 0.5}) is False
    assert tracker.named("epoch") == [("run-1", 1, {"loss": 0.5})]


@pytest.mark.parametrize(("state", "retry_coming", "checkpoint_left", "backup_left"), [
    (TrialState.COMPLETE, False, False, False),  # MLflow holds the checkpoint; no retry needs the copy
    (TrialState.PRUNED, False, False, False),
    (TrialState.FAILED, False, False, False),
    (TrialState.FAILED, True, False, True),  # the retry continues from the copy
])
def test_close_records_the_outcome_then_tidies_the_trials_files(tmp_path: Path, state: TrialState, retry_coming: bool,
                                                                checkpoint_left: bool, backup_left: bool) -> None:
    life, tracker = _life(tmp_path)
    files = life.files(0)
    files.checkpoint.parent.mkdir(parents=True)
    files.checkpoint.write_bytes(b"model")
    files.backup.folder.mkdir()
    (files.backup.folder / "epoch-1.keras").write_bytes(b"copy")
    run_id = life.open(TrialStart(0, {}))
    outcome = TrialOutcome(state, value=0.9 if state is not TrialState.FAILED else None,
                           checkpoint=files.checkpoint if state is TrialState.COMPLETE else None,
                           error="ValueError: no" if state is TrialState.FAILED else None,
                           measures={} if state is TrialState.FAILED else {"model_params": 1234.0},
                           runtime={} if state is TrialState.FAILED else {"kerasweep.backend": "jax",
                                                                           "kerasweep.precision": "float32"})
    life.close(run_id, outcome, files=files, retry_coming=retry_coming)
    _, ended, value, checkpoint, error = tracker.named("finish")[0]
    # Rule: the run ends in the trial's state, with the checkpoint only when complete, the error when failed
    assert ended is state and value == outcome.value and error == outcome.error
    assert checkpoint == (files.checkpoint if state is TrialState.COMPLETE else None)
    # Rule: what the trained model costs is logged with the outcome, in the same write
    assert tracker.named("measures") == [(run_id, outcome.measures)]
    # Rule: a trained trial's run says which backend and precision it trained under
    assert tracker.named("runtime") == ([] if state is TrialState.FAILED else [(run_id, outcome.runtime)])
    assert files.checkpoint.exists() is checkpoint_left
    assert files.backup.folder.exists() is backup_left
    # Rule: nothing left means no trial folder left
    assert files.checkpoint.parent.exists() is backup_left


def test_close_keeps_a_checkpoint_another_round_continues_and_logs_what_a_builder_asked(tmp_path: Path) -> None:
    from kerasweep.trainers.suggest import Suggestions

    life, tracker = _life(tmp_path)
    files = TrialFiles(checkpoint=tmp_path / "round" / "model.keras", backup=BackupPolicy(tmp_path / "round" / "resume"))
    files.checkpoint.parent.mkdir()
    files.checkpoint.write_bytes(b"model")
    asked = Suggestions.replay({"units": 16})
    asked.suggest_int("units", 8, 32, step=8)
    run_id = life.open(TrialStart(0, {}))
    life.close(run_id, TrialOutcome(TrialState.PRUNED, 0.5), asked=asked, files=files, keep_checkpoint=True)
    # Rule: a pruned Hyperband round keeps its model for the round promoted from it
    assert files.checkpoint.exists()
    # Rule: a define-by-run builder's values are logged as it named them
    assert tracker.named("params") == [(run_id, {"units": 16})]


def test_abandon_fails_a_run_still_open_and_leaves_a_closed_one_alone(tmp_path: Path) -> None:
    life, tracker = _life(tmp_path)
    open_run, closed_run = life.open(TrialStart(0, {})), life.open(TrialStart(1, {}))
    life.close(closed_run, TrialOutcome(TrialState.COMPLETE, 0.9))
    life.abandon(open_run, "interrupted")
    life.abandon(closed_run, "interrupted")
    life.abandon(None, "interrupted")  # Ctrl-C before the run was opened
    finished = {args[0]: args for args in tracker.named("finish")}
    # Rule: only the run still open ends failed with the reason; a finished one keeps its state
    assert finished[open_run][1] is TrialState.FAILED and finished[open_run][4] == "interrupted"
    assert finished[closed_run][1] is TrialState.COMPLETE and len(tracker.named("finish")) == 2


def test_fail_orphans_ends_every_open_run_but_those_kept(tmp_path: Path) -> None:
    life, tracker = _life(tmp_path)
    live, dead = life.open(TrialStart(0, {})), life.open(TrialStart(1, {}))
    assert life.fail_orphans(keep=lambda number: number == 0) == 1
    assert tracker.running == {live}
    assert tracker.named("finish")[0][0] == dead and tracker.named("finish")[0][4] == "worker process died during the trial"


def test_the_failure_streak_stops_after_the_limit_in_a_row_only() -> None:
    streak = FailureStreak(3)
    for error in ["ValueError: a", "ValueError: b", None, "ValueError: c", "KeyError: d"]:
        streak.add(error)
        streak.check()
    # Rule: a success in between starts the count again
    assert streak.message is None
    streak.add("ValueError: e")
    # Rule: the message names the most common error and the last one, the same on every engine
    with pytest.raises(SweepAborted, match=r"the last 3 trials all failed \(most often: 'ValueError', 2x; last: ValueError: e\)"):
        streak.check()


def test_the_streak_read_back_from_a_sweeps_trials_follows_trial_order() -> None:
    trials = tuple(TrialResult(n, TrialState.FAILED, error=f"E: {n}") for n in (4, 3, 2))
    trials += (TrialResult(1, TrialState.COMPLETE, 0.9), TrialResult(5, TrialState.RUNNING))
    result = SweepResult("s", "ray", "maximize", 10, trials)
    # Rule: the three failures after the complete trial make a streak of three; the running one is not counted
    assert FailureStreak.of(result, 3).message is not None
    assert FailureStreak.of(result, 4).message is None


def test_progress_reads_the_trials_at_most_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    from kerasweep.search import lifecycle

    now = [100.0]
    monkeypatch.setattr(lifecycle.time, "monotonic", lambda: now[0])
    reads, shown = [], []
    progress = Progress(shown.append, lambda: reads.append(1) or len(reads), every_s=2.0)
    progress()
    now[0] += 1.0
    progress()
    now[0] += 1.5
    progress()
    progress(force=True)
    # Rule: the first call shows at once; within the interval nothing is read; force always reads
    assert shown == [1, 2, 3]


def test_the_ray_budget_searcher_counts_only_trials_without_error_and_stops_on_a_streak() -> None:
    pytest.importorskip("ray")
    from ray.tune.search import Searcher

    from kerasweep.search.engines.ray import _budget_searcher_class

    class Fake(Searcher):
        def __init__(self) -> None:
            super().__init__(metric="val_accuracy", mode="max")
            self.n = 0

        def suggest(self, trial_id: str) -> dict:
            self.n += 1
            return {"n": self.n}

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            pass

    searcher = _budget_searcher_class()(Fake(), budget=2, failures_in_a_row=2)
    assert searcher.suggest("a") == {"n": 1} and searcher.suggest("b") == {"n": 2}
    # Rule: while the running trials could meet the budget, nothing new starts (one may still fail)
    assert searcher.suggest("c") is None
    searcher.on_trial_complete("a", error=True)
    assert searcher.suggest("c") == {"n": 3}
    searcher.on_trial_complete("b", {"val_accuracy": 0.9})
    searcher.on_trial_complete("c", error=True)
    assert searcher.suggest("d") == {"n": 4}
    searcher.on_trial_complete("d", error=True)
    # Rule: two failed in a row (c, d): no new trial, whatever the budget says
    assert searcher.suggest("e") == Searcher.FINISHED
    # Rule: a restored experiment starts a new streak; the budget counts complete trials only
    searcher.set_state(searcher.get_state())
    assert searcher.suggest("e") == {"n": 5}
    searcher.on_trial_complete("e", {"val_accuracy": 0.8})
    assert searcher.suggest("f") == Searcher.FINISHED


def test_ray_trials_are_numbered_in_the_order_tune_added_them_not_the_order_they_start(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from types import SimpleNamespace

    from kerasweep.search.engines.ray import _tune_callback_class

    life, tracker = _life(tmp_path)
    callback = _tune_callback_class()(life.sweep)
    callback._life = life
    first, second, third = (SimpleNamespace(trial_id=f"t{i}", status="PENDING", config={"i": i}) for i in range(3))
    added = [first, second, third]
    second.status = "RUNNING"
    callback.on_trial_start(0, added, second)  # its actor was ready first
    first.status = "RUNNING"
    callback.on_trial_start(0, added, first)
    # Rule: --warm-start's point, suggested first, is trial 0 whichever actor starts first
    assert [args[0] for args in tracker.named("start")] == [1, 0]
    assert [args[1] for args in tracker.named("start")] == [{"i": 1}, {"i": 0}]
    callback.on_trial_error(0, added, first)
    callback.on_trial_start(0, added, first)  # retried: a new run, after the numbers already given
    assert tracker.named("start")[-1][0] == 3 and tracker.named("start")[-1][2]["kerasweep.retry_of"] == "0"
