"""A real, throw-away PostgreSQL server on 127.0.0.1 (Debian's initdb + pg_ctl), for tests and benchmarks."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL binaries, or None when the postgresql package is not installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a server in a temporary folder, yield its SQLAlchemy URL, stop and remove it afterwards."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("Debian's postgresql package is missing (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="kerasweep-pg-"))  # under /tmp: the postgres user can reach it
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = folder / "data"

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, cwd=folder)

    pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "kerasweep", "--no-sync")
    pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "start",
       "-o", f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=200")
    try:
        pg(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "kerasweep", "sweeps")
        yield f"postgresql+psycopg2://kerasweep@127.0.0.1:{port}/sweeps"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)
