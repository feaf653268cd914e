"""The Quick start on a fresh clone: `git clone`, `make install`, `make sweep`, run by the install benchmark
(`benchmarks/bench_install.py`, which times them for `make bench`), and the peer script it compares with.

Not slow: with warm caches (CI's own `make install` has just filled uv's) it takes under a minute, and it is
the one test that installs the project from its own files as a new user does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import QUIET_ENV, ROOT, run_bench


def test_a_fresh_clone_installs_and_sweeps_and_the_peer_script_runs(tmp_path: Path) -> None:
    # warm caches: CI's own `make install` just filled uv's, so this measures the path, not the network
    proc = run_bench("bench_install.py", "--installers", "uv", "--warm", "--no-peer", "--trials", "1", "--epochs",
                     "1", "--store", str(tmp_path), timeout=900)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    document = json.loads((tmp_path / "bench" / "install.json").read_text())
    (row,) = document["results"].values()
    # Rule: each row is a fresh clone, its `make install` and its first sweep, timed apart and summed
    assert row["install_s"] > 0 and row["sweep_s"] > 0
    assert row["total_s"] == row["clone_s"] + row["install_s"] + row["sweep_s"]
    assert document["goal_s"] == 180 and document["warm"] is True
    assert (tmp_path / "bench" / "install.png").stat().st_size > 10_000
    # Rule: the peer is a script a user writes with only optuna, tensorflow and scikit-learn: it runs as it is
    peer = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peer_optuna_script.py"), "2", "2"],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **QUIET_ENV}, timeout=600,
                          check=False)
    assert peer.returncode == 0, peer.stderr
    assert float(peer.stdout.split()[-1]) > 0.5
    unknown = run_bench("bench_install.py", "--installers", "conda")
    assert unknown.returncode == 2 and "--installers: unknown conda; expected uv, pip" in unknown.stderr


def test_an_unknown_installer_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    made = subprocess.run(["make", "--no-print-directory", "install", "INSTALLER=conda"], cwd=clone,
                          capture_output=True, text=True, timeout=60, check=False)
    # Rule: one line naming the variable and what it takes, exit 2, and no .venv created
    assert made.returncode == 2
    assert made.stderr.splitlines()[0] == "INSTALLER: expected uv or pip, got 'conda'"
    assert not (clone / ".venv").exists()
