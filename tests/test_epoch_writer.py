"""The epoch writer (a tracking server's epochs off the training thread): in order, every write awaited at
a trial's end, and a failed write raised on the training thread at its next epoch."""

from __future__ import annotations

import threading
import time

import pytest

from kerasweep.search.epoch_writer import EpochWriter


def test_writes_run_in_order_and_flush_waits_for_all() -> None:
    writer, written = EpochWriter(), []
    for epoch in range(1, 51):
        writer.submit("run", lambda e: (time.sleep(0.001), written.append(e)), epoch)
    writer.flush("run")
    # Rule: every epoch, in the order it came, before the trial's end goes on
    assert written == list(range(1, 51))


def test_a_failed_write_is_raised_at_the_next_epoch_and_at_the_end() -> None:
    writer, failed = EpochWriter(), threading.Event()

    def unreachable() -> None:
        failed.set()
        raise ConnectionError("API request to http://127.0.0.1:1/api/2.0/mlflow/runs/log-batch failed: "
                              "Max retries exceeded")

    writer.submit("run", unreachable)
    failed.wait(5)
    time.sleep(0.05)
    # Rule: the server's error stops the trial at its next epoch, not silently later
    with pytest.raises(ConnectionError, match="Max retries exceeded"):
        writer.submit("run", lambda: None)
    writer.submit("other", unreachable)
    with pytest.raises(ConnectionError):
        writer.flush("other")
    writer.flush("run")  # what was queued after the error still ran
