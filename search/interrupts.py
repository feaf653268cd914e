"""Hold Ctrl-C while a store write is in flight.

A KeyboardInterrupt raised in the middle of an SQLite or PostgreSQL write (MLflow's or Optuna's) can
leave a transaction open, and the clean-up that follows then waits on the lock it holds. Writes run
inside `deferred_interrupts()`: a Ctrl-C that arrives meanwhile is raised as soon as the write ends.
Training itself is never deferred, so Ctrl-C still stops a trial at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block to its end, then raise the KeyboardInterrupt that came meanwhile (if any).

    Usable as a decorator too. Only the main thread receives signals; elsewhere this does nothing.
    """
    # nothing to hold when Ctrl-C is ignored (a background job) or not Python's to handle
    if threading.current_thread() is not threading.main_thread() or not callable(signal.getsignal(signal.SIGINT)):
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt
