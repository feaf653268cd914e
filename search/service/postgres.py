"""The service's PostgreSQL: a private cluster (Debian's `initdb` + `pg_ctl`) under the service folder.

One server holds the MLflow tracking database, MLflow's user database (basic-auth) and the Optuna
database. Every connection over TCP authenticates with SCRAM; the password is never on a command line:
the server's clients (MLflow, Optuna, kerasweep) read it from a libpq password file (PGPASSFILE).
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from kerasweep.search.errors import UserInputError
from kerasweep.search.service.layout import DB_USER, ServiceDir, write_private

DATABASES = ("mlflow", "mlflow_auth", "optuna")


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL binaries, or None when the postgresql package is not installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _bin(name: str) -> str:
    bindir = postgres_bin()
    if bindir is None:
        raise UserInputError("service: PostgreSQL is not installed (expected /usr/lib/postgresql/*/bin/initdb); "
                             "install Debian's package: apt-get install postgresql")
    return str(bindir / name)


def _as_server_user(where: ServiceDir) -> list[str]:
    """PostgreSQL refuses to run as root: as root, its files belong to the `postgres` user, which runs it."""
    if os.geteuid() != 0:
        return []
    user = pwd.getpwnam("postgres")
    for folder in [where.root, *where.root.parents]:  # the server user must be able to reach its data
        if folder.stat().st_mode & 0o001 == 0 and folder != where.root:
            raise UserInputError(f"--dir: as root, PostgreSQL runs as the postgres user, who cannot enter {folder}; "
                                 "choose a folder whose parents others may enter (such as /srv/kerasweep)")
    where.root.chmod(where.root.stat().st_mode | 0o711)
    where.postgres.mkdir(exist_ok=True)
    os.chown(where.postgres, user.pw_uid, user.pw_gid)
    where.postgres.chmod(0o700)
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str], what: str, **kwargs: object) -> None:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise UserInputError(f"service: PostgreSQL {what} failed: {(done.stderr or done.stdout).strip()[-500:]}")


def initialise(where: ServiceDir, password: str) -> None:
    """Make the cluster once: SCRAM for every TCP connection, the superuser's password from a file that is
    removed again at once."""
    if (where.postgres_data / "PG_VERSION").is_file():
        return
    where.postgres.mkdir(parents=True, exist_ok=True)
    as_user = _as_server_user(where)
    pwfile = where.postgres / "initial-password"
    write_private(pwfile, password + "\n")
    if as_user:
        user = pwd.getpwnam("postgres")
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    try:
        _run([*as_user, _bin("initdb"), "-D", str(where.postgres_data), "-U", DB_USER, f"--pwfile={pwfile}",
              "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--no-sync"], "initdb", cwd=where.postgres)
    finally:
        pwfile.unlink(missing_ok=True)


def start(where: ServiceDir, host: str, port: int) -> None:
    """Start the server on `host:port` (its socket files stay in the service folder)."""
    as_user = _as_server_user(where)
    options = f"-h {host} -p {port} -k {where.postgres} -c max_connections=200"
    _run([*as_user, _bin("pg_ctl"), "-D", str(where.postgres_data), "-l", str(where.postgres_log), "-w", "-t", "60",
          "-o", options, "start"], f"start on {host}:{port} (its log: {where.postgres_log})", cwd=where.postgres)


def stop(where: ServiceDir) -> None:
    if not (where.postgres_data / "postmaster.pid").is_file():
        return
    subprocess.run([*_as_server_user(where), _bin("pg_ctl"), "-D", str(where.postgres_data), "-m", "fast", "-w",
                    "stop"], capture_output=True, cwd=where.postgres, check=False)


def server_pid(where: ServiceDir) -> int | None:
    """The postmaster's pid from its pid file, or None when it is not running."""
    try:
        return int((where.postgres_data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_pgpass(where: ServiceDir, host: str, port: int, password: str) -> None:
    """The libpq password file every client of this server reads (PGPASSFILE)."""
    write_private(where.pgpass, f"{host}:{port}:*:{DB_USER}:{password}\n")


def create_databases(where: ServiceDir, host: str, port: int) -> None:
    """One database each for MLflow's runs, MLflow's users and Optuna's studies (kept if they exist)."""
    import psycopg2

    connection = psycopg2.connect(host=host, port=port, user=DB_USER, dbname="postgres", passfile=str(where.pgpass))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            existing = {row[0] for row in cursor.fetchall()}
            for name in DATABASES:
                if name not in existing:
                    cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()
