"""Hold Ctrl-C while the stores are read or written; let it through at once while a trial trains.

A KeyboardInterrupt raised in the middle of an SQLite statement (MLflow's or Optuna's, a read as much
as a write) can leave that connection's lock behind: the clean-up that follows (failing the running
trial) then waits out SQLite's busy timeout, a full minute, before it fails too. Measured here: a
Ctrl-C at a random moment of a `trial.report` loop left the database locked one time in four.

So store work runs inside `deferred_interrupts()`: a Ctrl-C that arrives meanwhile is raised as soon as
the block ends, and a second Ctrl-C raises at once (the user insists). Training runs inside
`interruptible()`, which lets Ctrl-C through immediately even within a held block.

SIGTERM (how container platforms and batch schedulers stop a job) takes the same path as Ctrl-C once
`stop_on_sigterm()` is installed: it is handed to whatever handles SIGINT at that moment, so a held
block still runs to its end and Ray Tune still stops gracefully.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_terminated = False  # a SIGTERM arrived: the CLI exits 143 instead of 130
_pending = False  # a Ctrl-C was raised and may have been dropped (see `raise_if_interrupted`)


def stop_on_sigterm() -> None:
    """Handle SIGTERM as Ctrl-C from now on (main thread only; call again after a library replaced it),
    and Ctrl-C so that one the interpreter drops is raised again (`raise_if_interrupted`)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)


def _on_sigint(number: int, frame: Any) -> None:
    """Python's Ctrl-C (KeyboardInterrupt at once), remembered: raised while the interpreter runs a
    finaliser or a weakref callback of the garbage collector, it is printed as "Exception ignored" and
    dropped, and the sweep went on to its end (measured: 1 Ctrl-C in 15 during a trial)."""
    global _pending
    _pending = True
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raise the Ctrl-C that arrived and was dropped (see `_on_sigint`); called at each epoch's end and
    before each trial, where a KeyboardInterrupt stops the sweep as it should."""
    global _pending
    if _pending and threading.current_thread() is threading.main_thread():
        _pending = False
        raise KeyboardInterrupt


def clear_interrupt() -> None:
    """A new sweep in this process starts with no Ctrl-C pending (the last one's was handled)."""
    global _pending
    _pending = False


def terminated() -> bool:
    """True once a SIGTERM was received by this process."""
    return _terminated


def stop_reason() -> str:
    """Why a running trial ended when the sweep was stopped: the same words on every engine."""
    return f"interrupted: the sweep was stopped ({'SIGTERM' if _terminated else 'Ctrl-C'}); re-run to resume"


def _on_sigterm(number: int, frame: Any) -> None:
    global _terminated
    _terminated = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):  # Python's (KeyboardInterrupt), a hold, or Ray Tune's graceful stop
        handler(signal.SIGINT, frame)
    else:  # Ctrl-C ignored (a background job): a SIGTERM must still stop the command
        raise KeyboardInterrupt


class _Hold:
    """The SIGINT handler while Ctrl-C is held: remembers it, and gives way on the second press."""

    def __init__(self, previous: Any) -> None:
        self.previous = previous
        self.received = 0

    def __call__(self, number: int, frame: Any) -> None:
        self.received += 1
        if self.received > 1:
            raise KeyboardInterrupt


def _can_hold() -> bool:
    # only the main thread receives signals; nothing to hold when Ctrl-C is ignored (a background job)
    return threading.current_thread() is threading.main_thread() and callable(signal.getsignal(signal.SIGINT))


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block to its end, then raise the KeyboardInterrupt that came meanwhile (if any).

    Usable as a decorator too. Blocks nest: an inner block hands a held Ctrl-C on to the outer one, so
    the outermost block always runs to its end (a write and the record of its result stay together).
    The held Ctrl-C goes to the handler the block found: Python's raises KeyboardInterrupt, a library's
    own (Ray Tune stops its experiment gracefully) does what it does.
    Elsewhere than the main thread this does nothing.
    """
    if not _can_hold():
        yield
        return
    hold = _Hold(signal.getsignal(signal.SIGINT))
    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, hold.previous)
        if hold.received == 1:
            if isinstance(hold.previous, _Hold):
                hold.previous.received += 1
            else:  # delivered late to whoever handles it: KeyboardInterrupt, or Ray Tune's graceful stop
                hold.previous(signal.SIGINT, None)


@contextmanager
def interruptible() -> Iterator[None]:
    """Inside a held block, let Ctrl-C through at once (raising one that was held meanwhile first)."""
    hold = signal.getsignal(signal.SIGINT) if _can_hold() else None
    if not isinstance(hold, _Hold):
        yield
        return
    original, holds = hold, []
    while isinstance(original, _Hold):  # blocks nest: under all of them, the handler to let through
        holds.append(original)
        original = original.previous
    if any(h.received for h in holds):
        for h in holds:
            h.received = 0  # raised here, not again when the held blocks end
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, original)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, hold)
