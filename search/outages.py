"""The stores' outages, told apart from a trial's own failure: a full disk, an unreachable MLflow server.

Neither is any config's fault, and every later write would fail the same way, so the trial in flight is
not recorded as the config's failure and the sweep stops with one line saying what to do, instead of
failing trial after trial or ending in a traceback hundreds of lines long. Re-running the same command
continues the sweep: its start-up fails whatever the outage left RUNNING.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from kerasweep.search.errors import DiskFull, KerasweepError, TrackingUnreachable
from kerasweep.search.store import MIN_FREE_BYTES, Store, megabytes

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
FULL_MESSAGES = ("no space left on device", "database or disk is full", "disk quota exceeded")
UNREACHABLE_MESSAGES = ("max retries exceeded", "connection refused", "failed to establish a new connection",
                        "read timed out", "remotedisconnected", "connection aborted")


def is_outage(exc: BaseException | None) -> bool:
    return is_disk_full(exc) or is_tracking_unreachable(exc)


def outage(store: Path | Store, tracking_uri: str | None, exc: BaseException) -> KerasweepError | None:
    """The one-line error for an outage behind `exc`, or None when it is something else."""
    if is_disk_full(exc):
        return disk_full(store, exc)
    if is_tracking_unreachable(exc):
        return tracking_unreachable(tracking_uri, exc)
    return None


def is_tracking_unreachable(exc: BaseException | None) -> bool:
    """An MLflow tracking server that stopped answering (after the client's own retries)."""
    for e in _chain(exc):
        if isinstance(e, TrackingUnreachable):
            return True
        text = str(e).lower()
        if "api request to" in text and any(words in text for words in UNREACHABLE_MESSAGES):
            return True
        if type(e).__module__.startswith(("requests", "urllib3")) and "connection" in type(e).__name__.lower():
            return True
    return False


def tracking_unreachable(tracking_uri: str | None, exc: BaseException) -> TrackingUnreachable:
    if isinstance(exc, TrackingUnreachable):
        return exc
    return TrackingUnreachable(
        f"MLFLOW_TRACKING_URI: the MLflow server {tracking_uri or ''} stopped answering (after its client's retries, "
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES): the sweep stopped, its running trial failed in Optuna; re-run the same "
        "command once the server is back to continue (the runs it left RUNNING are closed then)")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether an error, or one it was raised from, says the disk is full (an OSError's errno, SQLite's
    "database or disk is full", or the same words inside another library's error)."""
    return any(isinstance(e, DiskFull) or (isinstance(e, OSError) and e.errno in FULL_ERRNOS)
               or any(words in str(e).lower() for words in FULL_MESSAGES) for e in _chain(exc))


def disk_full(store: Path | Store, exc: BaseException) -> DiskFull:
    """One line for a full disk: the store, the file being written when known, the free space, the fix."""
    if isinstance(exc, DiskFull):
        return exc
    root = store.root if isinstance(store, Store) else Path(store)
    filename = next((e.filename for e in _chain(exc) if isinstance(e, OSError) and e.filename), None)
    writing = f" writing {filename}" if filename else ""
    try:
        free = megabytes(shutil.disk_usage(root if root.exists() else Path.cwd()).free)
    except OSError:
        free = "unknown"
    return DiskFull(f"{root}: the disk is full{writing} ({free} free): free at least {megabytes(MIN_FREE_BYTES)} "
                    "there, or pass --store on another disk, then re-run the same command to continue")


def _chain(exc: BaseException | None) -> list[BaseException]:
    found: list[BaseException] = []
    while exc is not None and exc not in found:
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


