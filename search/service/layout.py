"""A service folder: every path in it, its ports, its generated secrets and the client's `client.env`.

Everything the service keeps lives under one folder (`--dir`): PostgreSQL's data, MLflow's artifacts,
Ray's session files, the logs and the secrets. Secrets are generated once, at the first `service up`,
and kept in `secrets.json` (mode 0600); they never appear on a command line, in a log or in MLflow.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from kerasweep.search.errors import UserInputError

DEFAULT_PORT_BASE = 7100
DEFAULT_HOST = "127.0.0.1"
COMPONENTS = ("postgres", "mlflow", "ray")
ADMIN = "admin"  # MLflow basic-auth's admin user
DB_USER = "kerasweep"  # PostgreSQL's superuser in the service's private cluster
MAX_RAY_DIR = 40  # Ray's socket paths (DIR/ray, a 41-character session name, /sockets/plasma_store) fit in 107 bytes


@dataclass(frozen=True)
class Ports:
    """PostgreSQL, the MLflow server, Ray's GCS, Ray's Job API (the dashboard), and two Ray ports that are
    fixed elsewhere (the head's dashboard agent, Ray's client server), from `--port-base`: two services or a
    local Ray on one machine never meet on them."""

    postgres: int
    mlflow: int
    ray: int
    jobs: int
    agent: int = 0
    ray_client: int = 0

    @classmethod
    def from_base(cls, base: int) -> Ports:
        if not 1024 <= base <= 65530:
            raise UserInputError(f"--port-base: expected a port between 1024 and 65530 (it uses 6 ports), got {base}")
        return cls(base, base + 1, base + 2, base + 3, base + 4, base + 5)


@dataclass(frozen=True)
class Secrets:
    postgres_password: str
    mlflow_password: str
    ray_token: str
    flask_secret: str  # MLflow's CSRF protection of its basic-auth forms

    @classmethod
    def generate(cls) -> Secrets:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_hex(32), secrets.token_hex(32))


@dataclass(frozen=True)
class ServiceDir:
    """Every path under one service folder; nothing else joins its path pieces."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    postgres = property(lambda self: self.root / "postgres")
    postgres_data = property(lambda self: self.root / "postgres" / "data")
    postgres_log = property(lambda self: self.root / "postgres" / "postgres.log")
    pgpass = property(lambda self: self.root / "pgpass")
    artifacts = property(lambda self: self.root / "artifacts")
    mlflow_auth_config = property(lambda self: self.root / "mlflow-auth.ini")
    ray_temp = property(lambda self: self.root / "ray")
    store = property(lambda self: self.root / "store")  # the submitted sweeps' local state (Tune's, on the head)
    logs = property(lambda self: self.root / "logs")
    secrets_file = property(lambda self: self.root / "secrets.json")
    state_file = property(lambda self: self.root / "service.json")
    client_env = property(lambda self: self.root / "client.env")

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"


@dataclass(frozen=True)
class ServiceState:
    """What `service up` started, read by `status` and `down`: the host, the ports, the processes."""

    host: str
    ports: Ports
    pids: dict[str, int]

    def save(self, where: ServiceDir) -> None:
        write_private(where.state_file, json.dumps({"host": self.host, "ports": asdict(self.ports),
                                                    "pids": self.pids}, indent=2))

    @classmethod
    def load(cls, where: ServiceDir) -> ServiceState | None:
        if not where.state_file.is_file():
            return None
        raw = json.loads(where.state_file.read_text())
        return cls(raw["host"], Ports(**raw["ports"]), {k: int(v) for k, v in raw.get("pids", {}).items()})


def load_or_make_secrets(where: ServiceDir) -> Secrets:
    """The service's secrets: generated at its first start, the same at every later one."""
    if where.secrets_file.is_file():
        return Secrets(**json.loads(where.secrets_file.read_text()))
    made = Secrets.generate()
    write_private(where.secrets_file, json.dumps(asdict(made)))
    return made


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600 from its creation, never briefly readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def check_host(host: str) -> str:
    """The address every component binds to: one of this machine's addresses. A host other than loopback is
    allowed because every component authenticates (PostgreSQL passwords, MLflow basic-auth, Ray tokens)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UserInputError(f"--host: expected an IP address of this machine (default 127.0.0.1), got {host!r}") \
            from None
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
    except OSError as exc:
        raise UserInputError(f"--host: {host} is not an address of this machine ({exc.strerror})") from None
    return host


def check_dir(where: ServiceDir) -> None:
    """A folder the service can live in: not a file, and short enough for Ray's socket paths."""
    if where.root.exists() and not where.root.is_dir():
        raise UserInputError(f"--dir: {where.root} is a file; expected a folder for the service's state")
    if len(str(where.ray_temp)) > MAX_RAY_DIR:
        raise UserInputError(f"--dir: {where.root} is too long for Ray's socket paths ({len(str(where.ray_temp))} "
                             f"characters with /ray, at most {MAX_RAY_DIR}); choose a shorter path such as /srv/kerasweep")


def client_env(host: str, ports: Ports, keys: Secrets) -> str:
    """`client.env`: what a laptop needs to submit, watch and cancel sweeps (source it, or `set -a; . client.env`)."""
    values = {
        "KERASWEEP_SERVICE": f"http://{_url_host(host)}:{ports.jobs}",
        "MLFLOW_TRACKING_URI": f"http://{_url_host(host)}:{ports.mlflow}",
        "MLFLOW_TRACKING_USERNAME": ADMIN,
        "MLFLOW_TRACKING_PASSWORD": keys.mlflow_password,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": keys.ray_token,
        "KERASWEEP_RAY_HEAD": f"{_url_host(host)}:{ports.ray}",
        "KERASWEEP_STORAGE": optuna_url(host, ports, keys.postgres_password),
    }
    lines = ["# kerasweep service: source this file (set -a; . ./client.env; set +a). It holds secrets: keep it 0600."]
    return "\n".join([*lines, *(f"{key}={value}" for key, value in values.items())]) + "\n"


def optuna_url(host: str, ports: Ports, password: str | None = None) -> str:
    """The Optuna storage on the service's PostgreSQL; without a password, libpq reads it from PGPASSFILE."""
    auth = f"{DB_USER}:{password}" if password else DB_USER
    return f"postgresql+psycopg2://{auth}@{_url_host(host)}:{ports.postgres}/optuna"


def database_url(host: str, ports: Ports, database: str) -> str:
    """A service database's URL with no password in it (the server processes read PGPASSFILE)."""
    return f"postgresql+psycopg2://{DB_USER}@{_url_host(host)}:{ports.postgres}/{database}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
