"""The benchmark scripts run end to end and write what the README promises (no timing assertions).

Slow (`make test-slow`): each starts real sweeps. `make bench` and `make bench-quick` run the same
scripts with larger settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUIET_ENV, ROOT, run_bench

pytestmark = pytest.mark.slow


def test_bookkeeping_bench(tmp_path: Path) -> None:
    proc = run_bench("bench_bookkeeping.py", "--trials", "30", "--store", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    document = json.loads((tmp_path / "bench" / "bookkeeping.json").read_text())
    results = document["results"]
    # Rule: every storage with and without MLflow, and the peer, each ran exactly the asked trials
    expected = {"kerasweep, SQLite + MLflow", "kerasweep, SQLite", "kerasweep, journal file + MLflow",
                "kerasweep, journal file", "peer: Optuna, SQLite + MLflowCallback"}
    assert expected <= set(results)
    assert all(r["trials"] == 30 and r["trials_per_s"] > 0 for r in results.values())
    # Rule: "+ MLflow" runners logged a run per trial, the others none (a runner's patch must not leak into the next)
    assert {name: r["mlflow_trial_runs"] for name, r in results.items() if name.startswith("kerasweep")} == \
        {name: 30 if name.endswith("+ MLflow") else 0 for name in results if name.startswith("kerasweep")}
    assert document["machine"]["cpus"] == os.cpu_count()
    assert (tmp_path / "bench" / "bookkeeping.png").stat().st_size > 10_000
    assert "trials/s" in proc.stdout


def test_time_to_target_bench(tmp_path: Path) -> None:
    tools = "kerasweep optuna,Optuna TPE"
    proc = run_bench("bench_time_to_target.py", "--seeds", "1", "--budget", "30", "--target", "0.9",
                  "--tools", tools, "--store", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    document = json.loads((tmp_path / "bench" / "time_to_target.json").read_text())
    # Rule: each tool ran in its own process and its epochs were read back within the budget
    for tool in tools.split(","):
        run = document["runs"][tool][0]
        assert run["trials"] >= 1 and run["curve"], tool
        assert all(t <= 30 for t, _ in run["curve"])
        assert run["best"] == max(value for _, value in run["curve"])
        assert set(document["summary"][tool]) >= {"median_time_to_target_s", "median_best", "median_first_epoch_s"}
    assert (tmp_path / "bench" / "time_to_target.png").stat().st_size > 10_000


def test_overhead_bench(tmp_path: Path) -> None:
    proc = run_bench("bench_overhead.py", "--trials", "2", "--epochs", "1", "--store", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "bench" / "overhead.json").read_text())["results"]
    # Rule: the four runners side by side, each with its ratio to the bare loop
    assert set(results) == {"bare Keras loop", "kerasweep optuna engine", "kerasweep ray engine",
                            "plain Ray Tune (defaults)"}
    assert results["bare Keras loop"]["ratio"] == 1.0
    assert all(r["per_trial_s"] > 0 and r["first_trial_s"] > 0 for r in results.values())  # the first apart
    assert (tmp_path / "bench" / "overhead.png").stat().st_size > 10_000
    unknown = run_bench("bench_overhead.py", "--runners", "optuna,tpu")
    # Rule: --runners picks from a closed list (where Ray is not installed, say); a wrong name is one line, exit 2
    assert unknown.returncode == 2 and "--runners: unknown tpu; expected bare, optuna, ray, ray-tune" in unknown.stderr


def test_gpu_bench_runs_the_same_sweep_per_packing_and_on_the_cpu(tmp_path: Path) -> None:
    # no GPU here: one named to the sweep (CUDA_VISIBLE_DEVICES) makes the packed runs' placement real; JAX on CPU
    env = {**os.environ, **QUIET_ENV, "KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": "0"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--space", "cnn", "--packings",
                           "2", "--cpu", "--trials", "2", "--store", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "bench" / "gpu-cnn.json").read_text())["rows"]
    # Rule: each run is the CLI with its packing, read back from its own store: trials, backend, first line
    assert [r["run"] for r in rows] == ["2 per GPU", "CPU cores, 1 worker"]
    assert all(r["rc"] == 0 and r["finished"] == 2 and r["backend"] == ["jax"] for r in rows)
    assert "2 worker(s), 2 per GPU" in rows[0]["first_line"] and "1 worker(s)" in rows[1]["first_line"]
    table = (tmp_path / "bench" / "gpu-cnn.md").read_text().splitlines()
    assert len([line for line in table if line.startswith("| ")]) == 3  # the header and one row per run


def _search_quality(tmp_path: Path, runners: set[str]) -> None:
    out = tmp_path / "out.json"
    proc = run_bench("bench_search_quality.py", "--tasks", "3945", "--seeds", "2", "--budgets", "1,3",
                     "--runners", ",".join(sorted(runners)), "--json", str(out), "--store", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(out.read_text())
    records = document["results"]
    assert document["not_run"] == {}  # the test extra installs DEHB and SMAC3
    # Rule: one record per runner, task, seed and budget, each with the fields other tools read
    assert {(r["runner"], r["task"], r["seed"], r["budget"]) for r in records} == \
        {(runner, 3945, seed, budget) for runner in runners for seed in (0, 1) for budget in (1, 3)}
    assert all({"incumbent", "trials", "epochs_spent", "regret", "search_s"} <= set(r) for r in records)
    # Rule: every runner spent its whole budget of epochs (52 per full run) and found something
    assert all(r["epochs_spent"] == 52 * r["budget"] and 0 < r["incumbent"] <= 1 and r["trials"] >= 1 for r in records)
    assert set(document["median_regret"]) == runners and set(document["seconds_per_search"]) == runners
    assert (tmp_path / "bench" / "search_quality.png").stat().st_size > 5_000


#: the runners on Ray Tune: a test of their own, in the group of tests that start Ray (tests/conftest.py)
RAY_RUNNERS = {"ray-asha-optuna", "ray-asha-optuna-4-concurrent"}


def test_search_quality_bench(tmp_path: Path) -> None:
    from benchmarks.search_runners import PEER, RUNNERS

    _search_quality(tmp_path, set(RUNNERS) - RAY_RUNNERS)  # with the next test: every runner
    document = json.loads((tmp_path / "out.json").read_text())
    assert PEER in document["median_regret"] and "kerasweep" in document["against_peer"]
    # Rule: --merge reports on runs already made (several processes side by side) exactly as the run itself did
    merged = tmp_path / "merged"
    proc = run_bench("bench_search_quality.py", "--merge", str(tmp_path / "out.json"), "--store", str(merged))
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads((merged / "bench" / "search_quality.json").read_text())
    assert (again["median_regret"], again["against_peer"]) == (document["median_regret"], document["against_peer"])
    twice = run_bench("bench_search_quality.py", "--merge", f"{tmp_path / 'out.json'},{tmp_path / 'out.json'}",
                      "--store", str(merged))
    assert twice.returncode != 0 and "is already in an earlier file" in twice.stderr


def test_search_quality_bench_ray_runners(tmp_path: Path) -> None:
    from benchmarks.search_runners import RUNNERS

    assert RAY_RUNNERS <= set(RUNNERS)
    _search_quality(tmp_path, RAY_RUNNERS)


def test_tracking_bench_compares_sqlite_and_the_service_over_http(tmp_path: Path) -> None:
    proc = run_bench("bench_tracking.py", "--epochs", "20", "--trials", "5", "--store", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads((tmp_path / "bench" / "tracking.json").read_text())
    results = document["results"]
    # Rule: one row per tracking store, side by side, each with both figures; every epoch arrived (the
    # script checks it) and the service it started is gone
    assert [r["store"] for r in results] == ["embedded SQLite", "service over HTTP, synchronous",
                                             "service over HTTP, kerasweep's Tracker (queued)"]
    assert all(r["ms_per_epoch_on_thread"] > 0 and r["ms_per_epoch_until_written"] >= r["ms_per_epoch_on_thread"]
               for r in results)
    assert "Logging 20 epochs" in proc.stdout
    # Rule: whole stubbed sweeps on the embedded stores and on the service's, each of every trial (the script
    # checks that every trial reached MLflow)
    assert [(r["stores"], r["trials"]) for r in document["sweeps"]] == [
        ("embedded: SQLite (Optuna and MLflow)", 5), ("service: PostgreSQL (Optuna), MLflow over HTTP", 5)]
    assert all(r["trials_per_s"] > 0 for r in document["sweeps"])
