"""`kerasweep service up / status / down`: PostgreSQL, an MLflow tracking server and a Ray head, all
state under one folder, every component authenticated, a `client.env` for the team's laptops.

The service adds no state of its own: the truth of every sweep is in PostgreSQL and MLflow (and Tune's
experiment folder on the head), so any component can die and `service up` starts again what is down.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from kerasweep.search.errors import UserInputError
from kerasweep.search.service import components, postgres
from kerasweep.search.service.layout import (
    COMPONENTS, DEFAULT_HOST, DEFAULT_PORT_BASE, Ports, ServiceDir, ServiceState, check_dir, check_host, client_env, load_or_make_secrets,
    write_private,
)

START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    address: str
    up: bool
    started_now: bool = False


def up(where: ServiceDir, host: str | None = None, port_base: int | None = None) -> list[ComponentStatus]:
    """Start every component that is not running (none twice); write `client.env`. A service folder keeps the
    host and ports of its first start (default 127.0.0.1 and 7100), so clients' `client.env` stays true: other
    ones asked for later are refused, not ignored."""
    check_dir(where)
    state = ServiceState.load(where)
    if state is not None:
        _check_same(where, state, host, port_base)
        host, ports = state.host, state.ports
    else:
        host, ports = check_host(host or DEFAULT_HOST), Ports.from_base(port_base or DEFAULT_PORT_BASE)
    before = {s.name: s.up for s in status(where, ServiceState(host, ports, state.pids if state else {}))}
    if not any(before.values()):
        _check_ports_free(host, ports)
    where.root.mkdir(parents=True, exist_ok=True)
    keys = load_or_make_secrets(where)
    pids = dict(state.pids) if state else {}
    env = components.server_env(where, host, ports, keys)
    if not before["postgres"]:
        postgres.initialise(where, keys.postgres_password)
        postgres.start(where, host, ports.postgres)
    postgres.write_pgpass(where, host, ports.postgres, keys.postgres_password)
    postgres.create_databases(where, host, ports.postgres)
    pids["postgres"] = postgres.server_pid(where) or 0
    if not before["mlflow"]:
        components.stop_processes(pids.get("mlflow"), where.artifacts)  # what is left of one that died
        command, extra = components.mlflow_command(where, host, ports, keys)
        pids["mlflow"] = components.start_detached(command, where.log("mlflow"), {**env, **extra})
    if not before["ray"]:  # a head partly killed (its GCS alive, its Job API gone) would refuse to start again
        components.stop_processes(pids.get("ray"), where.ray_temp)
        components.stop_nodes_of(ports.ray)  # this machine's nodes of the dead head would block its restart
        pids["ray"] = components.start_detached(components.ray_head_command(where, host, ports), where.log("ray"), env)
    ServiceState(host, ports, pids).save(where)
    write_private(where.client_env, client_env(host, ports, keys))
    _wait_until_up(where, ServiceState(host, ports, pids))
    return [ComponentStatus(s.name, s.address, s.up, not before[s.name]) for s in status(where)]


def status(where: ServiceDir, state: ServiceState | None = None) -> list[ComponentStatus]:
    """Each component, up (it answers on its address) or down."""
    state = state or ServiceState.load(where)
    if state is None:
        raise UserInputError(f"--dir: no kerasweep service in {where.root} (no service.json); start one with "
                             f"`kerasweep service up --dir {where.root}`")
    host, ports = state.host, state.ports
    return [
        ComponentStatus("postgres", f"{host}:{ports.postgres}", _listening(host, ports.postgres)
                        and postgres.server_pid(where) is not None),
        ComponentStatus("mlflow", f"http://{host}:{ports.mlflow}", _answers(f"http://{host}:{ports.mlflow}/health")),
        ComponentStatus("ray", f"{host}:{ports.ray} (Job API http://{host}:{ports.jobs})",
                        _listening(host, ports.ray) and _answers(f"http://{host}:{ports.jobs}/api/version",
                                                                 refused_is_up=True)),
    ]


def down(where: ServiceDir) -> list[str]:
    """Stop everything the service started, joined worker nodes of this folder included; returns what was
    stopped. Data, secrets and `client.env` stay: the next `up` continues where this one left off."""
    state = ServiceState.load(where)
    if state is None:
        raise UserInputError(f"--dir: no kerasweep service in {where.root} (no service.json)")
    stopped = []
    for name in reversed(COMPONENTS):
        pid = state.pids.get(name)
        if name == "postgres":
            was_up = postgres.server_pid(where) is not None
            postgres.stop(where)
            components.stop_processes(None, where.postgres_data)
        else:
            was_up = components.alive(pid)
            components.stop_processes(pid, where.ray_temp if name == "ray" else where.artifacts)
        if was_up:
            stopped.append(name)
    ServiceState(state.host, state.ports, {}).save(where)
    return stopped


def _check_same(where: ServiceDir, state: ServiceState, host: str | None, port_base: int | None) -> None:
    for flag, asked, kept in (("--host", host, state.host), ("--port-base", port_base, state.ports.postgres)):
        if asked is not None and asked != kept:
            raise UserInputError(f"{flag}: the service in {where.root} runs with {flag} {kept} (its clients' client.env "
                                 f"says so); leave {flag} out, or `kerasweep service down` and use a new --dir")


def _check_ports_free(host: str, ports: Ports) -> None:
    for name, port in (("postgres", ports.postgres), ("mlflow", ports.mlflow), ("ray", ports.ray),
                       ("Job API", ports.jobs), ("Ray's dashboard agent", ports.agent),
                       ("Ray's client server", ports.ray_client)):
        if _listening(host, port):
            raise UserInputError(f"--port-base: port {port} ({name}) on {host} is taken by another program; pass "
                                 "another --port-base (the service uses 6 ports from it)")


def _wait_until_up(where: ServiceDir, state: ServiceState) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        current = status(where, state)
        if all(s.up for s in current):
            return
        for s in current:
            pid = state.pids.get(s.name)
            if not s.up and s.name != "postgres" and not components.alive(pid):
                raise UserInputError(f"service: {s.name} exited at start; its log: {where.log(s.name)}")
        if time.monotonic() > deadline:
            late = ", ".join(s.name for s in current if not s.up)
            raise UserInputError(f"service: {late} not up within {START_TIMEOUT_S:.0f} s; logs under {where.logs}")
        time.sleep(0.5)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _answers(url: str, refused_is_up: bool = False) -> bool:
    """Whether an HTTP server answers at `url` (401 or 403 count as up where `refused_is_up`: it is there,
    and refuses a request without credentials, as it should)."""
    try:
        with urllib.request.urlopen(url, timeout=2.0):
            return True
    except urllib.error.HTTPError as exc:
        return refused_is_up and exc.code in (401, 403)
    except (OSError, ValueError):
        return False
