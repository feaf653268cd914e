"""A real two-node Ray cluster on this machine: `make cluster-local` (a rehearsal for a GPU cluster).

    python cluster/local_cluster.py [STORE]    # start head + worker on 127.0.0.1, sweep, show nodes, stop

Starts `ray start --head` and a second node that joins it (one CPU each, so trials spread across
both), runs a small sweep on it through `--address`, prints which node ran each trial, and stops both.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

BIN = Path(sys.executable).parent
# Ray 2.60 turns on token auth for `ray start --head`; every node and the driver must use the token too.
QUIET = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3",
         "RAY_AUTH_MODE": "token"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(folder: Path, cpus_per_node: int = 1) -> str:
    """Start a head node and one worker node on 127.0.0.1, their files under `folder`; returns the cluster
    address."""
    port = free_port()
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", "--disable-usage-stats"]
    subprocess.run([str(BIN / "ray"), "start", "--head", f"--port={port}", "--include-dashboard=false",
                    f"--temp-dir={folder / 'head'}", *common], check=True, capture_output=True, env=QUIET)
    address = f"127.0.0.1:{port}"
    subprocess.run([str(BIN / "ray"), "start", f"--address={address}", f"--temp-dir={folder / 'worker'}",
                    f"--dashboard-agent-listen-port={free_port()}", *common], check=True, capture_output=True, env=QUIET)
    return address


def stop(folder: Path) -> None:
    """Stop the two nodes started under `folder`: every process whose command line names it. Never `ray stop`,
    which stops every Ray on the machine (a team service's head, another sweep's local Ray)."""
    from kerasweep.search.service.components import stop_processes

    stop_processes(None, folder)


def nodes_of(store: Path, space: str, sweep: str) -> dict[int, str]:
    """Trial number -> Ray node id, as the driver recorded them in MLflow."""
    from mlflow.tracking import MlflowClient

    from kerasweep.search.store import Store

    client = MlflowClient(tracking_uri=f"sqlite:///{Store(store).mlflow_db.resolve()}")
    experiment = client.get_experiment_by_name(space)
    runs = client.search_runs([experiment.experiment_id], f"tags.`kerasweep.sweep` = '{sweep}'")
    return {int(r.data.tags["kerasweep.trial"]): r.data.tags.get("kerasweep.node", "?")
            for r in runs if r.data.tags.get("kerasweep.role") == "trial"}


def main(store: Path | None = None, trials: int = 4) -> dict[int, str]:
    store = store or Path(tempfile.mkdtemp(prefix="kerasweep-cluster-")) / "store"
    folder = Path(tempfile.mkdtemp(prefix="kc-", dir="/tmp"))  # short: Ray's socket paths must fit
    address = start(folder)
    try:
        print(f"Ray cluster up at {address}: a head node and a worker node, 1 CPU each")
        command = [str(BIN / "kerasweep"), "sweep", "mlp", "--engine", "ray", "--address", address,
                   "--trials", str(trials), "--epochs", "2", "--name", "cluster", "--store", str(store)]
        subprocess.run(command, check=True, env=QUIET)
    finally:
        stop(folder)
    nodes = nodes_of(store, "mlp", "cluster")
    short = {node: f"node-{i}" for i, node in enumerate(sorted(set(nodes.values())))}
    for number, node in sorted(nodes.items()):
        print(f"trial-{number}: ran on {short[node]} ({node[:12]})")
    print(json.dumps(dict(Counter(short[n] for n in nodes.values()))))
    return nodes


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
