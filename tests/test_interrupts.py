"""Ctrl-C never lands inside a store statement: held around store work, let through while training."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from kerasweep.search.interrupts import deferred_interrupts, interruptible


def _ctrl_c_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.fixture(autouse=True)
def _python_handles_ctrl_c():
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_in_a_held_block_is_raised_when_the_block_ends() -> None:
    steps: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            for step in range(3):
                time.sleep(0.01)
                steps.append(step)
    assert steps == [0, 1, 2]  # the block ran to its end first


def test_a_ctrl_c_held_by_an_inner_block_waits_for_the_outer_one() -> None:
    """A write and the record of its result (an MLflow run, then its id in Optuna) stay together."""
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            with deferred_interrupts():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)
                steps.append("inner")
            steps.append("outer")
    assert steps == ["inner", "outer"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_gets_through_at_once() -> None:
    steps: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            for step in range(5):
                if step < 2:
                    os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)
                steps.append(step)
    assert steps == [0]


def test_interruptible_lets_ctrl_c_through_inside_a_held_block() -> None:
    steps: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts(), deferred_interrupts():  # nested holds
            with interruptible():
                for step in range(5):
                    if step == 1:
                        os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.01)
                    steps.append(step)
    assert steps == [0]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_held_before_training_stops_it_before_it_starts() -> None:
    started = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
            with interruptible():
                started.append(True)
    assert not started


def test_ctrl_c_at_any_moment_of_held_optuna_writes_leaves_sqlite_unlocked(tmp_path: Path) -> None:
    """Unheld, a Ctrl-C inside `trial.report` left the database locked about one time in four (measured):
    the next write, the one that fails the trial, then waited out the busy timeout."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    rng = random.Random(0)
    for attempt in range(20):
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 2}})
        study = optuna.create_study(study_name=f"s{attempt}", storage=storage)
        trial = study.ask()
        _ctrl_c_after(rng.uniform(0.0, 0.05))
        with pytest.raises(KeyboardInterrupt):
            for step in range(10_000):
                with deferred_interrupts():
                    trial.report(0.5, step=step)
                    trial.should_prune()
        started = time.monotonic()
        study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
        assert time.monotonic() - started < 1.0, f"attempt {attempt}: the database was left locked"


def test_a_held_ctrl_c_goes_to_the_handler_a_library_installed() -> None:
    """Ray Tune installs its own SIGINT handler (stop the experiment gracefully); a Ctrl-C held by a
    store write inside its callbacks must reach that handler, not escape as KeyboardInterrupt."""
    stops: list[int] = []
    signal.signal(signal.SIGINT, lambda number, frame: stops.append(number))
    with deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert not stops  # held while the block runs
    assert stops == [signal.SIGINT]


def test_a_ctrl_c_the_interpreter_drops_is_raised_at_the_next_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python runs a signal's handler at whatever line is running, a weakref callback of the garbage collector
    included, where a KeyboardInterrupt is printed as "Exception ignored" and dropped (a sweep then ran to
    its end: 1 Ctrl-C in 15, by hand)."""
    import weakref

    from kerasweep.search.interrupts import clear_interrupt, raise_if_interrupted, stop_on_sigterm
    from kerasweep.search.trial import _epoch_callback

    saved = signal.getsignal(signal.SIGTERM)
    try:
        stop_on_sigterm()
        handler = signal.getsignal(signal.SIGINT)
        assert handler is not signal.default_int_handler

        class Model:
            stop_training = False

        dropped = []
        monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_type))
        model = Model()
        watch = weakref.ref(model, lambda ref: handler(signal.SIGINT, None))  # Ctrl-C lands in the callback
        del model
        assert watch() is None and dropped == [KeyboardInterrupt]  # printed and dropped, as Python does
        hooks = _epoch_callback([])
        hooks.on_train_begin()
        # Rule: the dropped Ctrl-C stops training at the next epoch's end, once
        with pytest.raises(KeyboardInterrupt):
            hooks.on_epoch_end(0, {"loss": 1.0})
        hooks.on_epoch_end(1, {"loss": 1.0})
        # Rule: a new sweep in this process starts with none pending
        with contextlib.suppress(KeyboardInterrupt):
            handler(signal.SIGINT, None)
        clear_interrupt()
        raise_if_interrupted()
    finally:
        signal.signal(signal.SIGTERM, saved)
