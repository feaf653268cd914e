"""SIGTERM (how schedulers and container platforms stop a job) ends a sweep as Ctrl-C does, on every
engine; servers stop with their command; a local Ray listens on 127.0.0.1 only (issue 17). Slow: each
test runs real sweeps or servers and signals them."""

from __future__ import annotations

import ipaddress
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, mlflow_client, run_cli, start_cli, sweep_runs, wait_or_kill, wait_for
from tests.process_tree import alive, descendants, listening

pytestmark = pytest.mark.slow


def _running_trial_runs(store: Path, experiment: str, name: str) -> int:
    try:
        _, runs = sweep_runs(mlflow_client(store, read_only=True), experiment, name)
    except Exception:  # noqa: BLE001 - not created yet
        return 0
    return sum(r.info.status == "RUNNING" for r in runs)


def _assert_all_gone(pids: set[int], grace: float = 15.0) -> None:
    deadline = time.time() + grace
    while alive(pids) and time.time() < deadline:
        time.sleep(0.3)
    # Rule: no worker process (Optuna worker, Ray node process) is left behind training on its own
    assert not alive(pids), f"processes {alive(pids)} outlived the sweep"


def _assert_stopped_like_ctrl_c(store: Path, name: str, out: str, err: str, code: int) -> None:
    # Rule: exit 143 with the same advice as Ctrl-C; the running trial failed with the reason; parent KILLED
    assert code == 143, out + err
    assert "Stopped by SIGTERM. Re-run the same command to resume." in err
    parents, runs = sweep_runs(mlflow_client(store), "mlp", name)
    assert [p.info.status for p in parents] == ["KILLED"]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    stopped = [r for r in runs if "SIGTERM" in r.data.tags.get("kerasweep.error", "")]
    assert stopped and all(r.data.tags["kerasweep.state"] == "failed" for r in stopped)


@pytest.mark.parametrize("engine, workers", [("optuna", 1), ("optuna", 2), ("keras-tuner", 1)])
def test_sigterm_stops_a_sweep_as_ctrl_c_does_and_it_resumes(tmp_path: Path, engine: str, workers: int) -> None:
    store, name = tmp_path / "store", f"term-{engine}-{workers}"
    # no pruner: every trial trains its 30 epochs, so a trial is still training when the signal comes (with
    # pruning, 40 short trials once finished before the test had seen one running)
    args = ["mlp", "--engine", engine, "--epochs", "30", "--pruner", "none", "--checkpoint-every", "0", "--name", name,
            "--store", str(store)]
    parallel = ["--workers", str(workers)] if engine == "optuna" else []  # an option of the optuna engine only
    proc = start_cli("sweep", *args, "--trials", "40", *parallel)
    wait_for(lambda: _running_trial_runs(store, "mlp", name) >= workers, proc)
    time.sleep(1.0)
    tree = descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)  # to the command only, as `kill PID` or a scheduler does
    out, err = wait_or_kill(proc, 90)
    _assert_stopped_like_ctrl_c(store, name, out, err, proc.returncode)
    _assert_all_gone(tree - {proc.pid})
    if engine == "optuna":
        from tests.conftest import optuna_trials

        assert "RUNNING" not in [t.state.name for t in optuna_trials(store, name)]
    # Rule: the same command resumes it to its budget
    done = sum(r.data.tags["kerasweep.state"] in ("complete", "pruned") for r in sweep_runs(mlflow_client(store), "mlp", name)[1])
    again = run_cli("sweep", *args, "--trials", str(done + 1))
    assert again.returncode == 0, again.stderr + again.stdout


def test_a_ray_sweep_listens_on_loopback_only_and_stops_on_sigterm(tmp_path: Path) -> None:
    store, name = tmp_path / "store", "term-ray"
    proc = start_cli("sweep", "mlp", "--engine", "ray", "--trials", "40", "--epochs", "30", "--name", name,
                     "--store", str(store))
    wait_for(lambda: _running_trial_runs(store, "mlp", name) >= 1, proc)
    sockets = listening(descendants(proc.pid))
    # Rule: the local Ray's every server (GCS, raylet, workers, agents) listens on 127.0.0.1 only
    assert len({pid for _, _, pid in sockets}) >= 3, sockets  # the GCS, the raylet and a worker at least
    assert [s for s in sockets if not _loopback(s[0])] == [], sockets
    tree = descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    out, err = wait_or_kill(proc, 120)
    _assert_stopped_like_ctrl_c(store, name, out, err, proc.returncode)
    _assert_all_gone(tree - {proc.pid})


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback  # ::ffff:127.0.0.1 is 127.0.0.1


def _create_dashboard_sweep(store: Path) -> None:
    """A recorded optuna sweep with its study, as `kerasweep dashboard` needs, without training."""
    import optuna

    from kerasweep.search.engines.optuna import make_storage
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import _write_record, make_config

    store.mkdir(parents=True)
    config = make_config(load_space("mlp"), name="dash", store=store)
    _write_record(config)
    optuna.create_study(study_name="dash", storage=make_storage(config))


@pytest.mark.parametrize("server", ["ui", "tensorboard", "dashboard"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_servers_stop_with_their_command(tmp_path: Path, server: str, sig: signal.Signals) -> None:
    store, port = tmp_path / "store", free_port()
    if server == "tensorboard":
        (store / "tensorboard" / "dash").mkdir(parents=True)
    elif server == "dashboard":
        _create_dashboard_sweep(store)
    args = ["ui"] if server == "ui" else [server, "dash"]
    proc = start_cli(*args, "--port", str(port), "--store", str(store))
    def answering() -> bool:  # the server itself, not only the Host guard in front of it (502 until it is up)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                return answer.status < 500
        except urllib.error.HTTPError as error:
            return error.code < 500
        except OSError:
            return False

    wait_for(answering, proc, 90, 0.3, f"{server} to answer on port {port}")
    tree = descendants(proc.pid)
    assert len(tree) >= 2 and proc.poll() is None, wait_or_kill(proc, 5)
    proc.send_signal(sig)
    wait_or_kill(proc, 30)
    time.sleep(0.5)
    # Rule: the server and every process it started are gone, and nothing listens on the port any more
    assert not alive(tree), f"{alive(tree)} outlived `kerasweep {server}`"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
