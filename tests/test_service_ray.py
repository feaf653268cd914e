"""The team service end to end (slow; its name says Ray, so it runs with the other Ray tests, one at a time):
`service up` -> a second node joins -> `submit` from a client with only client.env -> `jobs`, `logs` ->
`cancel` and a resubmit that finishes the exact budget -> the security checks -> `service down`."""

from __future__ import annotations

import json
import os
import random
import socket
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, wait_for, write_space
from tests.process_tree import alive, descendants, listening

pytestmark = pytest.mark.slow

SLOW_SPACE = """
    name: slowsvc
    model: mlp
    data: iris
    budget: {trials: 3, epochs: 30}
    search: {sampler: random, pruner: none, seed: 1}
    params:
      units: {type: int, low: 4, high: 8}
    fixed: {learning_rate: 0.05, batch_size: 1, patience: 100}
"""


def _free_base() -> int:
    for _ in range(50):
        base = random.randrange(20000, 40000)
        if all(_free(port) for port in range(base, base + 6)):
            return base
    raise RuntimeError("no 6 free ports in a row")


def _free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:`port` (connections closing in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _client_env(folder: Path) -> dict[str, str]:
    values = dict(line.split("=", 1) for line in (folder / "client.env").read_text().splitlines()
                  if line and not line.startswith("#"))
    return values


def _service_pids(folder: Path) -> set[int]:
    state = json.loads((folder / "service.json").read_text())
    roots = set(state["pids"].values())
    pidfile = folder / "postgres" / "data" / "postmaster.pid"
    if pidfile.is_file():
        roots.add(int(pidfile.read_text().split()[0]))
    found = set()
    for root in roots:
        found |= descendants(root) if root else set()
    for entry in Path("/proc").iterdir():  # Ray's helpers that left their parent: they name the folder
        if entry.name.isdigit():
            try:
                if str(folder).encode() in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return alive(found)


def _servers(folder: Path) -> list[int]:
    """The pids of the three servers: MLflow's and Ray's from service.json, the postmaster from its pid file."""
    pids = json.loads((folder / "service.json").read_text())["pids"]
    postmaster = int((folder / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    return [pids["mlflow"], pids["ray"], postmaster]


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _mlflow(env: dict[str, str]):
    from mlflow.tracking import MlflowClient

    os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")})
    return MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])


def _runs(env: dict[str, str], sweep: str) -> list:
    client = _mlflow(env)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, filter_string=f"tags.`kerasweep.sweep` = '{sweep}'", max_results=1000)


@pytest.fixture(scope="module")
def service():
    folder = Path(tempfile.mkdtemp(prefix="ksvc-", dir="/tmp"))  # short: Ray's socket paths must fit
    base = _free_base()
    proc = run_cli("service", "up", "--dir", str(folder), "--port-base", str(base), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield {"dir": folder, "base": base, "env": _client_env(folder), "up": proc}
    finally:
        run_cli("service", "leave", "--dir", str(folder / "node"))
        run_cli("service", "down", "--dir", str(folder), timeout=120)


def client(*args: str, env: dict[str, str], cwd: Path = ROOT, timeout: int = 540) -> subprocess.CompletedProcess:
    """A client process that has only client.env: no store, no service folder."""
    return run_cli(*args, env={**env, "KERASWEEP_STORE": str(cwd / "client-store")}, cwd=cwd, timeout=timeout)


def test_up_prints_each_component_and_starting_twice_starts_nothing(service) -> None:
    folder, base = service["dir"], service["base"]
    out = service["up"].stdout
    # Rule: one line per component with its address; client.env for clients, mode 0600
    assert f"127.0.0.1:{base}" in out and f"http://127.0.0.1:{base + 1}" in out and f"127.0.0.1:{base + 2}" in out
    assert stat.S_IMODE((folder / "client.env").stat().st_mode) == 0o600
    env = service["env"]
    assert set(env) >= {"KERASWEEP_SERVICE", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
                        "MLFLOW_TRACKING_PASSWORD", "RAY_AUTH_TOKEN", "KERASWEEP_STORAGE"}
    before = _servers(folder)
    again = run_cli("service", "up", "--dir", str(folder), "--port-base", str(base))
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stdout and "nothing started twice" in again.stdout
    assert _servers(folder) == before and len(alive(set(before))) == 3  # not a second server
    status = run_cli("service", "status", "--dir", str(folder))
    assert status.returncode == 0 and status.stdout.count(" up") == 3, status.stdout


def test_every_component_refuses_who_has_no_credentials(service) -> None:
    env = service["env"]
    search = f"{env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/experiments/search?max_results=1"
    basic = "Basic " + b64encode(f"{env['MLFLOW_TRACKING_USERNAME']}:{env['MLFLOW_TRACKING_PASSWORD']}".encode()).decode()
    jobs = f"{env['KERASWEEP_SERVICE']}/api/jobs/"
    # Rule: MLflow's REST API and Ray's Job API refuse a request without credentials, or with wrong ones
    assert _status(search) == 401
    assert _status(search, {"Authorization": "Basic " + b64encode(b"admin:wrong").decode()}) == 401
    assert _status(search, {"Authorization": basic}) == 200
    assert _status(search, {"Authorization": basic, "Host": "attacker.example:80"}) == 403  # DNS rebinding
    assert _status(jobs) == 401
    assert _status(jobs, {"Authorization": "Bearer wrong-token"}) == 403
    assert _status(jobs, {"Authorization": f"Bearer {env['RAY_AUTH_TOKEN']}"}) == 200
    # PostgreSQL: a password is required over TCP
    import psycopg2

    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(host="127.0.0.1", port=service["base"], user="kerasweep", dbname="optuna", passfile="/dev/null")


def test_a_joined_node_and_a_submitted_sweep_finish_its_budget(service, tmp_path: Path) -> None:
    folder, env = service["dir"], service["env"]
    joined = run_cli("service", "join", "--dir", str(folder / "node"), env=env)
    assert joined.returncode == 0, joined.stderr
    wait_for(lambda: _alive_nodes(env) == 2, timeout=120, what="the second node to join", describe=lambda: "")
    sent = client("submit", "mlp", "--trials", "4", "--epochs", "2", "--name", "svc-mlp", env=env, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert "svc-mlp" in sent.stdout
    listed = client("jobs", env=env, cwd=tmp_path)
    assert "svc-mlp" in listed.stdout and ("RUNNING" in listed.stdout or "PENDING" in listed.stdout
                                           or "SUCCEEDED" in listed.stdout), listed.stdout
    wait_for(lambda: "SUCCEEDED" in client("jobs", env=env, cwd=tmp_path).stdout, timeout=400,
             what="the job to succeed", describe=lambda: client("logs", "svc-mlp", env=env, cwd=tmp_path).stdout[-3000:])
    listed = client("jobs", env=env, cwd=tmp_path).stdout
    assert "4/4 trials" in listed, listed  # Rule: progress beside the state, against the budget
    logs = client("logs", "svc-mlp", env=env, cwd=tmp_path)
    assert "4/4 trials" in logs.stdout, logs.stdout[-2000:]
    followed = client("logs", "svc-mlp", "--follow", env=env, cwd=tmp_path, timeout=120)
    assert followed.returncode == 0 and "4/4 trials" in followed.stdout  # --follow ends with the job
    runs = _runs(env, "svc-mlp")
    trials = [r for r in runs if r.data.tags.get("kerasweep.role") == "trial"]
    parents = [r for r in runs if r.data.tags.get("kerasweep.role") == "sweep"]
    # Rule: every run of the submitted sweep is in the service's MLflow, read over HTTP with client.env alone
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert sum(t.data.tags["kerasweep.state"] in ("complete", "pruned") for t in trials) == 4
    # Rule: with two nodes of 2 CPUs and 4 trials at once, both nodes ran trials
    assert len({t.data.tags.get("kerasweep.node") for t in trials}) == 2, [t.data.tags.get("kerasweep.node") for t in trials]

    status = client("status", "svc-mlp", env=env, cwd=tmp_path)
    assert status.returncode == 0 and "svc-mlp" in status.stdout, status.stderr
    exported = client("export", "svc-mlp", env=env, cwd=tmp_path)
    assert exported.returncode == 0 and "(from the service)" in exported.stdout, exported.stderr
    config = tmp_path / "client-store" / "exports" / "svc-mlp.yaml"
    trained = client("train", str(config), "--epochs", "2", env=env, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    registered = trained.stdout.split("models:/", 1)[1].split()[0]
    # Rule: the registered model loads over HTTP in a fresh process with only client.env, and answers raw rows
    code = ("import mlflow; from sklearn.datasets import load_breast_cancer\n"
            "rows = load_breast_cancer(as_frame=True).frame.drop(columns=['target']).head(5)\n"
            f"import json; print(json.dumps([int(x) for x in mlflow.pyfunc.load_model('models:/{registered}').predict(rows)]))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, **env, "PYTHONWARNINGS": "ignore"}, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    answers = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert len(answers) == 5 and set(answers) <= {0, 1}, answers


def test_a_crashed_worker_node_ends_its_trial_and_the_sweep_meets_the_budget(service, tmp_path: Path) -> None:
    folder, env = service["dir"], service["env"]
    if _alive_nodes(env) < 2:  # run alone: the joined-node test did not run first
        assert run_cli("service", "join", "--dir", str(folder / "node"), env=env).returncode == 0
        wait_for(lambda: _alive_nodes(env) == 2, timeout=120, what="the second node to join", describe=lambda: "")
    worker = _worker_node(env)
    write_space(tmp_path, SLOW_SPACE.replace("slowsvc", "nodekill").replace("trials: 3", "trials: 4"))
    sent = client("submit", "space.yaml", env=env, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr

    def on_worker() -> bool:
        return any(r.data.tags.get("kerasweep.node") == worker and r.data.tags.get("kerasweep.state") == "running"
                   for r in _runs(env, "nodekill"))

    wait_for(on_worker, timeout=300, what="a trial running on the worker node",
             describe=lambda: client("logs", "nodekill", env=env, cwd=tmp_path).stdout[-3000:])
    node_dir = str(folder / "node").encode()
    for pid in {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, node_dir)}:
        try:  # kill -9 of the whole worker node: its raylet, object store and the trial's worker process
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    wait_for(lambda: _alive_nodes(env) == 1, timeout=120, what="the head to see the node dead", describe=lambda: "")
    wait_for(lambda: _job_state(env, tmp_path, "nodekill") in ("SUCCEEDED", "FAILED", "STOPPED"), timeout=400,
             what="the job to end", describe=lambda: client("logs", "nodekill", env=env, cwd=tmp_path).stdout[-3000:])
    ended = _job_state(env, tmp_path, "nodekill")
    print(f"the job after its worker node died: {ended}")  # shown by -rP: whether the resubmit below was needed
    if ended != "SUCCEEDED":  # the documented remedy: resubmit, it resumes
        assert client("submit", "space.yaml", env=env, cwd=tmp_path).returncode == 0
        wait_for(lambda: _job_state(env, tmp_path, "nodekill") == "SUCCEEDED", timeout=400, what="the resubmit",
                 describe=lambda: client("logs", "nodekill", env=env, cwd=tmp_path).stdout[-3000:])
    runs = _runs(env, "nodekill")
    trials = [r for r in runs if r.data.tags.get("kerasweep.role") == "trial"]
    numbers = [int(r.data.tags["kerasweep.trial"]) for r in trials]
    # Rule: the exact budget, on the head alone once the node died; no trial number twice; nothing RUNNING
    assert sum(t.data.tags["kerasweep.state"] in ("complete", "pruned") for t in trials) == 4, \
        [(t.data.tags.get("kerasweep.trial"), t.data.tags.get("kerasweep.state")) for t in trials]
    assert len(numbers) == len(set(numbers))
    assert "RUNNING" not in [r.info.status for r in runs] and "running" not in [r.data.tags.get("kerasweep.state")
                                                                               for r in runs]
    run_cli("service", "leave", "--dir", str(folder / "node"))  # its leftovers, if any


def test_a_cancelled_sweep_is_killed_and_its_resubmit_finishes_the_exact_budget(service, tmp_path: Path) -> None:
    env = service["env"]
    write_space(tmp_path, SLOW_SPACE)
    sent = client("submit", "space.yaml", env=env, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    again = client("submit", "space.yaml", env=env, cwd=tmp_path)
    assert again.returncode == 2 and "already running" in again.stderr  # Rule: one job per sweep name
    wait_for(lambda: any(r.data.tags.get("kerasweep.state") == "running" and r.data.tags.get("kerasweep.role") == "trial"
                         for r in _runs(env, "slowsvc")), timeout=240, what="a running trial",
             describe=lambda: client("logs", "slowsvc", env=env, cwd=tmp_path).stdout[-3000:])
    cancelled = client("cancel", "slowsvc", env=env, cwd=tmp_path)
    assert cancelled.returncode == 0 and "STOPPED" in cancelled.stdout, cancelled.stdout + cancelled.stderr
    runs = _runs(env, "slowsvc")
    # Rule: Ray's stop reaches kerasweep's SIGTERM path: parent KILLED, the trial in flight FAILED, nothing RUNNING
    assert [r.info.status for r in runs if r.data.tags.get("kerasweep.role") == "sweep"] == ["KILLED"]
    assert "running" not in [r.data.tags.get("kerasweep.state") for r in runs]
    resumed = client("submit", "space.yaml", "--epochs", "2", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: "SUCCEEDED" in client("jobs", env=env, cwd=tmp_path).stdout.split("slowsvc", 1)[-1].split("\n")[0],
             timeout=400, what="the resubmitted job to succeed",
             describe=lambda: client("logs", "slowsvc", env=env, cwd=tmp_path).stdout[-3000:])
    trials = [r for r in _runs(env, "slowsvc") if r.data.tags.get("kerasweep.role") == "trial"]
    numbers = [int(r.data.tags["kerasweep.trial"]) for r in trials]
    assert sum(t.data.tags["kerasweep.state"] in ("complete", "pruned") for t in trials) == 3  # the exact budget
    assert len(numbers) == len(set(numbers))  # no trial counted twice


def test_a_killed_ray_head_is_started_again_and_the_resubmit_finishes_the_exact_budget(service, tmp_path: Path) -> None:
    folder, env = service["dir"], service["env"]
    write_space(tmp_path, SLOW_SPACE.replace("slowsvc", "headkill").replace("epochs: 30", "epochs: 12"))
    sent = client("submit", "space.yaml", env=env, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    wait_for(lambda: any(r.data.tags.get("kerasweep.state") == "running" and r.data.tags.get("kerasweep.role") == "trial"
                         for r in _runs(env, "headkill")), timeout=240, what="a running trial",
             describe=lambda: client("logs", "headkill", env=env, cwd=tmp_path).stdout[-3000:])
    head = json.loads((folder / "service.json").read_text())["pids"]["ray"]
    ray_dir = str(folder / "ray").encode()
    marked = {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, ray_dir)}
    for pid in descendants(head) | marked:  # kill -9 of the head: its GCS, raylet, the job's driver and trials
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    wait_for(lambda: "DOWN" in run_cli("service", "status", "--dir", str(folder)).stdout, timeout=60,
             what="the head to be down", describe=lambda: "")
    again = run_cli("service", "up", "--dir", str(folder), timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already up") == 2 and "(started)" in again.stdout  # only the head started again
    resumed = client("submit", "space.yaml", "--epochs", "2", env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    wait_for(lambda: "SUCCEEDED" in client("jobs", env=env, cwd=tmp_path).stdout, timeout=400,
             what="the resubmitted job to succeed",
             describe=lambda: client("logs", "headkill", env=env, cwd=tmp_path).stdout[-3000:])
    trials = [r for r in _runs(env, "headkill") if r.data.tags.get("kerasweep.role") == "trial"]
    numbers = [int(r.data.tags["kerasweep.trial"]) for r in trials]
    # Rule: the exact budget, no trial number twice, nothing left RUNNING in MLflow
    assert sum(t.data.tags["kerasweep.state"] in ("complete", "pruned") for t in trials) == 3
    assert len(numbers) == len(set(numbers))
    assert "RUNNING" not in [r.info.status for r in _runs(env, "headkill")]


def test_no_secret_in_any_log_and_down_leaves_nothing_listening(service) -> None:
    folder, env = service["dir"], service["env"]
    secrets = [env["MLFLOW_TRACKING_PASSWORD"], env["RAY_AUTH_TOKEN"],
               json.loads((folder / "secrets.json").read_text())["postgres_password"]]
    pids = _service_pids(folder)
    host_ports = {(address, port) for address, port, _ in listening(pids)}
    base = service["base"]
    # Rule: PostgreSQL, MLflow and the Job API listen on the configured host only
    for port in (base, base + 1, base + 3):
        assert {a for a, p in host_ports if p == port} == {"127.0.0.1"}, host_ports
    for log in [*folder.rglob("*.log"), *folder.rglob("*.out"), *folder.rglob("*.err")]:
        if log.is_file():
            text = log.read_text(errors="replace")
            assert not any(secret in text for secret in secrets), log
    run_cli("service", "leave", "--dir", str(folder / "node"))
    down = run_cli("service", "down", "--dir", str(folder), timeout=120)
    assert down.returncode == 0, down.stderr
    # Rule: nothing the service started is left running or listening
    wait_for(lambda: not _service_pids(folder), timeout=60, what="every service process to end",
             describe=lambda: str(sorted(_service_pids(folder))))
    assert not listening(pids)
    assert all(_free(port) for port in (base, base + 1, base + 3))
    status = run_cli("service", "status", "--dir", str(folder))
    assert status.returncode == 1 and status.stdout.count("DOWN") == 3


def _cmdline_has(proc: Path, text: bytes) -> bool:
    try:
        return text in (proc / "cmdline").read_bytes()
    except OSError:
        return False


def _nodes(env: dict[str, str]) -> list[dict]:
    request = urllib.request.Request(f"{env['KERASWEEP_SERVICE']}/nodes?view=summary",
                                     headers={"Authorization": f"Bearer {env['RAY_AUTH_TOKEN']}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["data"]["summary"]


def _worker_node(env: dict[str, str]) -> str:
    """The node id of the live node that is not the head (the trials' `kerasweep.node` tag)."""
    ids = [n["raylet"]["nodeId"] for n in _nodes(env)
           if n.get("raylet", {}).get("state") == "ALIVE" and not n["raylet"].get("isHeadNode")]
    assert len(ids) == 1, _nodes(env)
    return ids[0]


def _job_state(env: dict[str, str], cwd: Path, name: str) -> str:
    """The state `kerasweep jobs` shows for the newest job of that name ('' when it shows none)."""
    lines = [line for line in client("jobs", env=env, cwd=cwd).stdout.splitlines() if name in line.split()[:1]]
    return next((word for word in lines[0].split() if word in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED",
                                                                 "STOPPED")), "") if lines else ""


def _alive_nodes(env: dict[str, str]) -> int:
    request = urllib.request.Request(f"{env['KERASWEEP_SERVICE']}/nodes?view=summary",
                                     headers={"Authorization": f"Bearer {env['RAY_AUTH_TOKEN']}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            summary = json.loads(answer.read())["data"]["summary"]
    except (OSError, KeyError, ValueError):
        return 0
    return sum(1 for node in summary if node.get("raylet", {}).get("state") == "ALIVE")
