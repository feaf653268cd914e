"""The local web UIs over a store, all bound to 127.0.0.1: MLflow, TensorBoard, optuna-dashboard.

Each function returns the command line, so tests start the very same servers the CLI starts.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

from kerasweep.search.errors import UserInputError
from kerasweep.search.store import Store
from kerasweep.search.tracking import seed_if_local, tracking_uri_for

HOST = "127.0.0.1"


def ui_command(store: Path, port: int = 5000) -> list[str]:
    """MLflow's tracking server over the store's runs; reads live while a sweep writes.

    A new local store is created whole first: the server would otherwise build its schema in place, and a
    sweep started in that moment failed on the half-made file."""
    uri = tracking_uri_for(store)
    if uri.startswith(("http://", "https://")):  # a team's tracking server already serves its UI
        raise UserInputError(f"MLFLOW_TRACKING_URI: {uri} is a tracking server, which serves its own UI: open it in a "
                             "browser; unset MLFLOW_TRACKING_URI to serve the store's runs here instead")
    seed_if_local(uri)
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
            "--host", HOST, "--port", str(port), "--workers", "1"]


def tensorboard_command(name: str, store: Path, port: int = 6006) -> list[str]:
    """TensorBoard over one sweep's per-trial logs (or `production` for make train runs)."""
    paths = Store(store)
    logdir = paths.tensorboard(name)
    if not logdir.is_dir():
        known = sorted(p.name for p in paths.tensorboard_root.glob("*")) if paths.tensorboard_root.is_dir() else []
        raise UserInputError(f"SWEEP: no TensorBoard logs for {name!r} under {store}/tensorboard; "
                             f"known: {', '.join(known) or 'none'}")
    return [str(Path(sys.executable).with_name("tensorboard")), "--logdir", str(logdir), "--host", HOST,
            "--port", str(port)]


def dashboard_command(name: str, store: Path, port: int = 8080) -> list[str]:
    """optuna-dashboard over the Optuna storage a sweep was run on (an engine that keeps one says where)."""
    from kerasweep.search.engines import get_engine
    from kerasweep.search.sweep import load_config

    config = load_config(name, store)
    storage_url = getattr(get_engine(config.engine), "storage_url", None)
    if storage_url is None:
        raise UserInputError(f"SWEEP: {name!r} ran on engine {config.engine!r}, which keeps no Optuna storage; "
                             "optuna-dashboard reads Optuna storages only")
    return [str(Path(sys.executable).with_name("optuna-dashboard")), storage_url(config), "--host", HOST,
            "--port", str(port)]


def serve(command: list[str], guarded: tuple[int, int] | None = None) -> int:
    """Run a server in the foreground until Ctrl-C or SIGTERM; returns its exit code. `guarded`: (port,
    inner port) for a server that checks no Host header: it listens on the inner port, and
    `search.host_guard` on the port refuses requests for any other host.

    The server runs in a process group of its own (MLflow's server starts workers of its own), which
    is stopped as a whole when this command stops, on Ctrl-C and SIGTERM alike, so nothing keeps
    listening behind it. Should this process be killed outright, the kernel sends the server SIGTERM.
    """
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    guard = None
    if guarded is not None:
        from kerasweep.search.host_guard import start_guard

        try:  # first: a port in use fails before the server starts
            guard = start_guard(HOST, *guarded)
        except OSError as exc:
            raise UserInputError(f"--port: cannot listen on {HOST}:{guarded[0]} ({exc.strerror}); pass another "
                                 "--port") from None
    server = subprocess.Popen(command, env=env, start_new_session=True,
                              preexec_fn=_stop_with_parent)  # noqa: PLW1509 - one prctl call, no locks taken
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (see search.interrupts.stop_on_sigterm)
        return 0
    finally:
        _stop_group(server)
        if guard is not None:
            guard.shutdown()
            guard.server_close()


def inner_port() -> int:
    """A free port on 127.0.0.1 for a guarded server to listen on behind its guard."""
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group, SIGKILL to what is left after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; its workers may linger a moment
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


def _stop_with_parent() -> None:
    """In the server process: receive SIGTERM when the kerasweep process dies (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
