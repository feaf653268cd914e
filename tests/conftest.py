"""Shared fixtures: run the real CLI in a subprocess, read the real stores it wrote."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
# a fourth engine, registered as a team would register its own: the contract suite runs it too
TEST_ENGINES = "random=tests.random_engine"
os.environ["KERASWEEP_ENGINES"] = TEST_ENGINES  # read when search.engines is first imported, here and in the CLI


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: int = 540) -> subprocess.CompletedProcess:
    """Run `kerasweep ARGS` exactly as a user would (console script in this venv). One that outlives
    `timeout` (under pytest-timeout's 600 s, so this fires first) fails the test with where each of its
    threads was (faulthandler, on SIGABRT) and the end of its output, never a bare timeout."""
    full_env = {**os.environ, **QUIET_ENV, "PYTHONFAULTHANDLER": "1", **(env or {})}
    full_env.pop("MLFLOW_TRACKING_URI", None) if "MLFLOW_TRACKING_URI" not in (env or {}) else None
    command = [str(Path(sys.executable).with_name("kerasweep")), *args]
    proc = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack to stderr
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        stacks = "\n".join(line for line in (err or "").splitlines() if not line.startswith("Extension modules:"))
        pytest.fail(f"kerasweep {' '.join(args)}: still running after {timeout} s\nstdout:\n{(out or '')[-4000:]}"
                    f"\nstderr:\n{stacks[-12000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def run_bench(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `benchmarks/SCRIPT ARGS` as `make bench` does, with a wide table (200 columns) in its output."""
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **QUIET_ENV, "COLUMNS": "200"}, timeout=timeout, check=False)


def invoke_cli(*args: str) -> subprocess.CompletedProcess:
    """Run `kerasweep ARGS` in this process (click's runner): the same command, exit code and output as
    `run_cli`, without a new interpreter importing TensorFlow again. For commands that start no Ray and
    where the process boundary is not what a test checks."""
    from click.testing import CliRunner

    from kerasweep.search.cli import main

    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)  # the store's own tracking file, as run_cli gives
    try:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    return subprocess.CompletedProcess(["kerasweep", *args], result.exit_code, result.stdout, result.stderr)


def start_cli(*args: str, **popen: object) -> subprocess.Popen:
    """Start `kerasweep ARGS` in the background, output piped as text, Ctrl-C at its default as in a
    terminal (a test run started as a background job ignores SIGINT, and children inherit that)."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen([str(Path(sys.executable).with_name("kerasweep")), *args], cwd=ROOT,
                            env={**os.environ, **QUIET_ENV}, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **options)


def wait_for(predicate, process: subprocess.Popen | None = None, timeout: float = 240.0, interval: float = 0.2,
             what: str = "", describe=None):
    """Poll `predicate` until it returns something true, and return that. Fails the test, with the process's
    output (or `describe()`), when time runs out or `process` exits first; a process still running then is
    killed, never left behind the rest of the suite."""
    deadline = time.time() + timeout
    while True:
        found = predicate()
        if found:
            return found
        ended = process is not None and process.poll() is not None
        if ended or time.time() > deadline:
            break
        time.sleep(interval)
    reason = f"exited with {process.returncode} first" if ended else f"not within {timeout:.0f} s"
    detail = describe() if describe is not None else ""
    if process is not None:
        if process.poll() is None:
            process.kill()
        out, err = process.communicate(timeout=30)
        detail += f"\nstdout:\n{(out or '')[-3000:]}\nstderr:\n{(err or '')[-3000:]}"
    pytest.fail(f"waited for {what or 'the condition'}: {reason}{detail}")


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """Its output once it exits; a sweep still running after `timeout` is killed, never left behind
    the rest of the suite (the TimeoutExpired still fails the test)."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def write_space(folder: Path, text: str, name: str = "space.yaml") -> Path:
    """Write a space file from an indented literal; returns its path."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


TINY_SPACE = """
    name: {name}
    model: mlp
    data: iris
    budget: {{trials: {trials}, epochs: {epochs}}}
    search: {{sampler: random, pruner: none, seed: 1}}
    params:
      units: {{type: int, low: 4, high: 8}}
    fixed: {{learning_rate: 0.05}}
"""


@pytest.fixture
def tiny_space(tmp_path: Path):
    """A factory for the smallest real space (an mlp on iris, seconds per trial): `tiny_space(name=..., trials=...,
    epochs=...)` writes it under tmp_path and returns its path."""
    def write(name: str = "tiny", trials: int = 2, epochs: int = 2) -> Path:
        return write_space(tmp_path, TINY_SPACE.format(name=name, trials=trials, epochs=epochs), f"{name}.yaml")

    return write


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_only_url(db: Path) -> str:
    """A read-only SQLAlchemy URL of a SQLite file, for polling a store while a sweep sets it up: such a
    client never creates the file or its tables (an absent file raises at once). A writable one would:
    MLflow and Optuna both create a missing schema, and one created by the test's poll while the sweep
    created it too made that sweep fail (exit 1 in CI)."""
    db = db.resolve()
    if not db.exists():  # MLflow retries a file it cannot open for about 100 s before it raises
        raise FileNotFoundError(db)
    return f"sqlite:///file:{db}?mode=ro&uri=true"


def mlflow_client(store: Path, *, read_only: bool = False):
    """A client on the store's own MLflow SQLite file (`read_only` while a sweep may still create it)."""
    from mlflow.tracking import MlflowClient

    from kerasweep.search.store import sqlite_url

    db = store / "mlflow.db"
    return MlflowClient(tracking_uri=read_only_url(db) if read_only else sqlite_url(db))


def sweep_runs(client, experiment: str, sweep: str) -> tuple[list, list]:
    """(parent runs, trial runs) of a sweep, found by tags as a user would in the UI."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`kerasweep.sweep` = '{sweep}'", max_results=1000)
    parents = [r for r in runs if r.data.tags.get("kerasweep.role") == "sweep"]
    trials = [r for r in runs if r.data.tags.get("kerasweep.role") == "trial"]
    return parents, trials


def optuna_trials(store: Path, study: str):
    import optuna

    from kerasweep.search.store import sqlite_url

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = sqlite_url(store / "optuna.db")
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


# tests that start Ray without "ray" in their name: the overhead bench runs the ray engine and plain Ray Tune,
# the tracking bench a team service (its Ray head)
STARTS_RAY = ("tests/test_benchmarks.py::test_overhead_bench", "tests/test_benchmarks.py::test_tracking_bench")


def starts_ray(nodeid: str) -> bool:
    """Whether a test starts a local Ray cluster (its id names Ray, or it is listed above)."""
    return "ray" in nodeid.lower() or nodeid.startswith(STARTS_RAY)


def pytest_configure(config: pytest.Config) -> None:
    """`make test-strict`: a Deprecation or Future warning caused by kerasweep's own calls fails the test."""
    if os.environ.get("KERASWEEP_STRICT_WARNINGS") == "1":
        for category in ("DeprecationWarning", "FutureWarning"):
            config.addinivalue_line("filterwarnings", f"error::{category}:kerasweep\\.")


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadgroup`: every test that starts Ray in one group, run one after another on one worker;
    the rest spread test by test. Two local Ray clusters starting at once on two cores time out, and a test
    that checks what a Ray sweep leaves behind must not see another test's Ray processes.

    The group is chosen here, in the controller, from the test ids: an `xdist_group` mark does not group
    under pytest 9.2 (pytest-xdist 3.8 renames `item._nodeid`, which pytest 9's `nodeid` no longer reads).
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class RayTogether(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "ray" if starts_ray(nodeid) else super()._split_scope(nodeid)

    return RayTogether(config, log)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


TRIALS, EPOCHS = 8, 4


@pytest.fixture(scope="session")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny sweep of the bundled cnn space (sweep name `tiny`), shared by the end-to-end tests."""
    store = tmp_path_factory.mktemp("e2e") / "store"
    proc = run_cli("sweep", "cnn", "--trials", str(TRIALS), "--epochs", str(EPOCHS), "--name", "tiny",
                   "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return {"store": store, "proc": proc}


@contextlib.contextmanager
def serving(command: list[str], port: int, timeout: float = 90.0, env: dict[str, str] | None = None,
            health: str = "/health"):
    """Start a real server process on 127.0.0.1:`port`, wait until `health` answers, stop it afterwards."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **QUIET_ENV, **(env or {})}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=2) as answer:
                    return answer.status == 200
            except OSError:
                return False

        def output() -> str:
            log.seek(0)
            return "\n" + log.read().decode()[-3000:]

        wait_for(answers, proc, timeout, 0.5, f"server {command[:4]} to answer {health}", output)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def mlflow_server(backend: Path, artifacts: Path, port: int):
    """A real MLflow tracking server (SQLite backend, proxied artifacts) on 127.0.0.1."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{backend}",
               "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    return serving(command, port)


@pytest.fixture(scope="session")
def postgres_url():
    """A real, throw-away PostgreSQL server on 127.0.0.1 (initdb + pg_ctl), removed afterwards."""
    from tests.postgres_server import postgres_bin, throwaway_postgres

    if postgres_bin() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's postgresql package is missing; .ci/run installs it")
        pytest.skip("needs Debian's postgresql package (initdb, pg_ctl)")
    with throwaway_postgres() as url:
        yield url
