"""The team service's commands refuse bad input with one line and exit 2, before anything starts or is sent
(the service itself, end to end, is tests/test_service_ray.py)."""

from __future__ import annotations

import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from kerasweep.search.service.layout import Ports, ServiceDir, client_env, load_or_make_secrets
from tests.conftest import invoke_cli, write_space


@pytest.fixture
def short_dir():
    """A folder under /tmp with a short path (a service folder must fit Ray's socket paths)."""
    folder = Path(tempfile.mkdtemp(prefix="ks-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def no_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KERASWEEP_SERVICE", "RAY_AUTH_TOKEN", "KERASWEEP_RAY_HEAD"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("args, expected", [
    (["service", "up", "--port-base", "80"], "--port-base: expected a port between 1024 and 65530"),
    (["service", "up", "--host", "203.0.113.7"], "--host: 203.0.113.7 is not an address of this machine"),
    (["service", "up", "--host", "localhost"], "--host: expected an IP address of this machine"),
    (["service", "status"], "no kerasweep service in"),
    (["service", "down"], "no kerasweep service in"),
    (["jobs"], "KERASWEEP_SERVICE: not set; source the service's client.env"),
    (["logs", "x"], "KERASWEEP_SERVICE: not set"),
    (["cancel", "x"], "KERASWEEP_SERVICE: not set"),
    (["service", "join", "--head", "127.0.0.1:1"], "RAY_AUTH_TOKEN: not set"),
], ids=["port base", "foreign host", "host name", "status of nothing", "down of nothing", "jobs", "logs", "cancel",
        "join without token"])
def test_service_commands_refuse_bad_input_in_one_line(args: list[str], expected: str, short_dir: Path,
                                                      no_service: None) -> None:
    folder = ["--dir", str(short_dir / "svc")] if args[0] == "service" and args[1] != "join" else []
    result = invoke_cli(*args, *folder)
    # Rule: one line naming the field and what was expected, exit 2, nothing created
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (short_dir / "svc").exists()


def test_a_service_folder_keeps_its_host_and_ports(short_dir: Path) -> None:
    from kerasweep.search.service.layout import ServiceState

    where = ServiceDir(short_dir / "svc")
    where.root.mkdir()
    ServiceState("127.0.0.1", Ports.from_base(7300), {}).save(where)
    result = invoke_cli("service", "up", "--dir", str(where.root), "--port-base", "7400")
    # Rule: a port base other than the folder's is refused, not ignored (its clients' client.env names it)
    assert result.returncode == 2 and "runs with --port-base 7300" in result.stderr, result.stderr


def test_a_service_folder_too_long_for_rays_sockets_is_refused(tmp_path: Path) -> None:
    result = invoke_cli("service", "up", "--dir", str(tmp_path / ("x" * 40)))
    assert result.returncode == 2 and "too long for Ray's socket paths" in result.stderr, result.stderr


def test_submit_refuses_a_bad_space_and_a_space_outside_the_code_folder(tmp_path: Path, no_service: None,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERASWEEP_SERVICE", "http://127.0.0.1:1")
    bad = write_space(tmp_path, "name: x\nmodel: mlp\ndata: iris\nparams: {learnin_rate: {type: float, low: 1, high: 2}}\n")
    result = invoke_cli("submit", str(bad))
    # Rule: the space is checked on the laptop, before anything is sent
    assert result.returncode == 2 and "learnin_rate" in result.stderr, result.stderr
    good = write_space(tmp_path, "name: x\nmodel: mlp\ndata: iris\nparams: {units: {type: int, low: 4, high: 8}}\n",
                       "good.yaml")
    code = tmp_path / "code"
    code.mkdir()
    result = invoke_cli("submit", str(good), "--code", str(code))
    assert result.returncode == 2 and "is outside --code" in result.stderr, result.stderr


def test_client_env_holds_what_a_client_needs_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    where = ServiceDir(tmp_path / "svc")
    keys = load_or_make_secrets(where)
    # Rule: secrets are generated once and kept; the files holding them are 0600 from their creation
    assert load_or_make_secrets(where) == keys
    assert stat.S_IMODE(where.secrets_file.stat().st_mode) == 0o600
    text = client_env("127.0.0.1", Ports.from_base(7100), keys)
    values = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert values["KERASWEEP_SERVICE"] == "http://127.0.0.1:7103"
    assert values["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:7101"
    assert values["RAY_AUTH_TOKEN"] == keys.ray_token and values["MLFLOW_TRACKING_PASSWORD"] == keys.mlflow_password
    assert values["KERASWEEP_STORAGE"].endswith("@127.0.0.1:7100/optuna")
