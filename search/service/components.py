"""The service's two long-running servers besides PostgreSQL: MLflow's tracking server and a Ray head.

Each is started detached (a session of its own, output to a log under the service folder), so it
outlives the `service up` command; `stop` ends its whole process group and every process left that
belongs to the service folder (Ray's head starts helpers of its own).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kerasweep.search.service.layout import ADMIN, Ports, Secrets, ServiceDir, database_url, write_private


def mlflow_command(where: ServiceDir, host: str, ports: Ports, keys: Secrets) -> tuple[list[str], dict[str, str]]:
    """MLflow's server with basic-auth on PostgreSQL, artifacts proxied into the service folder, answering
    only requests addressed to its own host and port (`--allowed-hosts`: no DNS rebinding)."""
    write_private(where.mlflow_auth_config, "\n".join([
        "[mlflow]", "default_permission = READ", f"database_uri = {database_url(host, ports, 'mlflow_auth')}",
        f"admin_username = {ADMIN}", "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        "auth_cache_ttl_seconds = 60", ""]))  # one PBKDF2 check per user a minute, not one per request
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
               "--backend-store-uri", database_url(host, ports, "mlflow"), "--serve-artifacts",
               "--artifacts-destination", str(where.artifacts), "--host", host, "--port", str(ports.mlflow),
               "--workers", "2", "--allowed-hosts", f"{host}:{ports.mlflow},{host}"]
    return command, {"MLFLOW_AUTH_CONFIG_PATH": str(where.mlflow_auth_config),
                     "MLFLOW_FLASK_SERVER_SECRET_KEY": keys.flask_secret}


def ray_head_command(where: ServiceDir, host: str, ports: Ports) -> list[str]:
    """A Ray head with its Job API on `host`; token authentication comes from the environment."""
    return [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address", host,
            "--port", str(ports.ray), "--dashboard-host", host, "--dashboard-port", str(ports.jobs),
            "--include-dashboard", "true", "--temp-dir", str(where.ray_temp), "--disable-usage-stats",
            "--dashboard-agent-listen-port", str(ports.agent or ports.jobs + 1),
            "--ray-client-server-port", str(ports.ray_client or ports.jobs + 2)]


def ray_worker_command(head: str, temp_dir: Path, host: str) -> list[str]:
    """A Ray worker node that joins `head` (host:port) and takes trials (its agent on a free port: Ray's
    fixed default is the head's when both run on one machine)."""
    return [str(Path(sys.executable).with_name("ray")), "start", "--address", head, "--block",
            "--node-ip-address", host, "--temp-dir", str(temp_dir), "--disable-usage-stats",
            "--dashboard-agent-listen-port", str(_free_port(host))]


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def server_env(where: ServiceDir, host: str, ports: Ports, keys: Secrets) -> dict[str, str]:
    """What the servers, and every job and trial the Ray head runs, see: the token, the tracking server and
    its credentials, the password file, and this installation's `kerasweep` first on PATH."""
    return {
        **os.environ,
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": keys.ray_token,
        "MLFLOW_TRACKING_URI": f"http://{host}:{ports.mlflow}", "MLFLOW_TRACKING_USERNAME": ADMIN,
        "MLFLOW_TRACKING_PASSWORD": keys.mlflow_password, "MLFLOW_AUTH_ADMIN_PASSWORD": keys.mlflow_password,
        "PGPASSFILE": str(where.pgpass), "KERASWEEP_STORE": str(where.store),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3",
        # `kerasweep cancel`: Ray's SIGTERM, then time for the sweep to fail its running trial in both stores
        # and close its parent run KILLED before Ray's SIGKILL (Ray waits 3 s by default)
        "RAY_JOB_STOP_WAIT_TIME_S": "60",
    }


def start_detached(command: list[str], log: Path, env: dict[str, str]) -> int:
    """Start a server in a session of its own, its output appended to `log`; returns its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True, cwd=log.parent)
    return process.pid


def stop_processes(pid: int | None, marker: Path, timeout: float = 20.0) -> None:
    """SIGTERM to a server's process group and to every process whose command line names `marker` (a folder
    of the service), SIGKILL to whatever is left after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        targets = _belonging(pid, marker)
        if not targets:
            return
        for target in targets:
            try:
                os.kill(target, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _belonging(pid, marker):
            time.sleep(0.2)


def stop_nodes_of(port: int, timeout: float = 20.0) -> None:
    """Stop this machine's Ray processes that belong to the cluster whose GCS listens on `port` (a joined
    worker node of a head that died): Ray refuses to start a head where such a process names its address
    ("already running"), and the old nodes cannot join the new head anyway."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        targets = _members(port)
        for target in targets:
            try:
                os.kill(target, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while targets and time.monotonic() < deadline and _members(port):
            time.sleep(0.2)


def _members(port: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        for index, arg in enumerate(args):
            named = arg.split("=", 1)[1] if arg.startswith(("--gcs-address=", "--gcs_address=", "--address=")) else (
                args[index + 1] if arg == "--address" and index + 1 < len(args) else "")
            if named.rsplit(":", 1)[-1] == str(port) and alive(int(entry.name)):
                found.append(int(entry.name))
                break
    return found


def _command_line(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def alive(pid: int | None) -> bool:
    """Whether `pid` runs (a zombie, which has ended, counts as gone)."""
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _belonging(pid: int | None, marker: Path) -> list[int]:
    """Processes of the group `pid` led, and every process whose command line names `marker`. A recorded pid
    that now belongs to another program (reused after a reboot) names no group of ours: its group is left
    alone (while any member of our old group lives, the kernel does not give its id to a new process)."""
    if pid is not None and _command_line(pid) is not None and str(marker) not in _command_line(pid):
        pid = None
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[0] == "Z":
            continue
        if (pid is not None and int(stat[2]) == pid) or str(marker) in cmdline:  # stat[2]: the process group
            found.append(int(entry.name))
    return found
