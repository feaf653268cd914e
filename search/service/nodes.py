"""Worker nodes: `kerasweep service join` starts a Ray worker node on this machine that takes the
service's trials; `leave` stops it. The node keeps nothing a later trial needs (runs and checkpoints go
to the service's MLflow and the head's store), so a node may leave or die at any time."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from kerasweep.search.errors import UserInputError
from kerasweep.search.service.components import alive, ray_worker_command, start_detached, stop_processes
from kerasweep.search.service.layout import write_private

NODE_FILE = "node.json"


def join(head: str, folder: Path, host: str | None = None) -> tuple[int, Path]:
    """Start a worker node joining `head` (host:port); its files under `folder`. Returns (pid, log)."""
    if not os.environ.get("RAY_AUTH_TOKEN"):
        raise UserInputError("RAY_AUTH_TOKEN: not set; source the service's client.env (it holds the token)")
    if ":" not in head:
        raise UserInputError(f"--head: expected the Ray head's host:port (KERASWEEP_RAY_HEAD in client.env), got {head!r}")
    folder = folder.resolve()
    record = folder / NODE_FILE
    if record.is_file() and alive(json.loads(record.read_text()).get("pid")):
        raise UserInputError(f"--dir: a worker node started from {folder} is already running; "
                             f"`kerasweep service leave --dir {folder}` stops it")
    temp = folder / "ray-node"
    command = ray_worker_command(head, temp, host or _own_address(head))
    env = {**os.environ, "RAY_AUTH_MODE": "token",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = folder / "logs" / "ray-node.log"
    pid = start_detached(command, log, env)
    write_private(record, json.dumps({"pid": pid, "head": head}))
    return pid, log


def leave(folder: Path) -> bool:
    """Stop the worker node started from `folder`; False when none was running."""
    folder = folder.resolve()
    record = folder / NODE_FILE
    if not record.is_file():
        return False
    pid = json.loads(record.read_text()).get("pid")
    running = alive(pid)
    stop_processes(pid, folder / "ray-node")
    record.unlink(missing_ok=True)
    return running


def _own_address(head: str) -> str:
    """The address this machine reaches the head from (what Ray would choose)."""
    import socket

    host, port = head.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host.strip("[]"), int(port)))
        return probe.getsockname()[0]
