"""A real two-node Ray cluster on 127.0.0.1 (`make cluster-local`): trials spread over both nodes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUIET_ENV, ROOT, mlflow_client, sweep_runs


@pytest.mark.slow  # a minute of two Ray nodes starting; CI runs it with make test-slow
def test_sweep_on_a_two_node_ray_cluster(tmp_path: Path) -> None:
    import os

    store = tmp_path / "store"
    proc = subprocess.run([sys.executable, str(ROOT / "cluster" / "local_cluster.py"), str(store)], cwd=ROOT,
                          env={**os.environ, **QUIET_ENV}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    parents, runs = sweep_runs(mlflow_client(store), "mlp", "cluster")
    nodes = {r.data.tags.get("kerasweep.node") for r in runs}
    # Rule: MLflow (written from the driver) holds every trial of the cluster sweep
    assert len(parents) == 1
    assert sum(r.data.tags["kerasweep.state"] in ("complete", "pruned") for r in runs) == 4
    # Rule: trials ran on both nodes of the cluster
    assert None not in nodes and len(nodes) == 2, nodes
    assert "ran on node-0" in proc.stdout and "ran on node-1" in proc.stdout
