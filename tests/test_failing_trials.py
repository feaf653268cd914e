"""A failing trial never loses the sweep (parallel workers: test_many_workers.py)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from kerasweep.search.engines import ENGINES
from kerasweep.search.tracking import ERROR_TAG, STATE_TAG
from tests.conftest import invoke_cli, mlflow_client, optuna_trials, run_cli, sweep_runs, write_space


def test_diverging_trials_fail_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # Half the learning rates blow the loss up to NaN: those trials fail, the others finish the budget.
    space = write_space(tmp_path, """
        name: diverge
        model: mlp
        data: iris
        budget: {trials: 4, epochs: 3}
        search: {sampler: random, pruner: none, seed: 1}
        params:
          learning_rate: {type: categorical, choices: [0.05, 0.1, 1.0e+12], default: 1.0e+12}
        fixed: {optimizer: sgd, units: 16}
    """)
    store = tmp_path / "store"
    proc = invoke_cli("sweep", str(space), "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    trials = optuna_trials(store, "diverge")
    states = Counter(t.state.name for t in trials)
    # Rule: failed trials do not eat the budget; the sweep still ends with its complete + pruned trials
    assert states["COMPLETE"] + states["PRUNED"] == 4
    assert states["FAIL"] >= 1  # the first trial (the declared default) diverges
    client = mlflow_client(store)
    _, runs = sweep_runs(client, "diverge", "diverge")
    failed = [r for r in runs if r.data.tags[STATE_TAG] == "failed"]
    assert len(failed) == states["FAIL"]
    for run in failed:
        # Rule: a failed trial says why (tag + traceback artifact) and its run status is FAILED
        assert run.info.status == "FAILED"
        assert run.data.tags[ERROR_TAG].startswith("diverged: loss became")
        assert "error.txt" in [a.path for a in client.list_artifacts(run.info.run_id)]
        # Rule: a NaN loss stops the trial at once instead of training a diverged model to the end
        losses = [m.value for m in client.get_metric_history(run.info.run_id, "loss")]
        assert not math.isfinite(losses[-1]) and all(math.isfinite(v) for v in losses[:-1])


def test_every_trial_failing_stops_the_sweep_with_one_message(tmp_path: Path) -> None:
    space = write_space(tmp_path, """
        name: allfail
        model: mlp
        data: iris
        budget: {trials: 20, epochs: 2}
        search: {sampler: random, pruner: none}
        params:
          learning_rate: {type: float, low: 1.0e+11, high: 1.0e+12, log: true}
        fixed: {optimizer: sgd, units: 8}
    """)
    store = tmp_path / "store"
    proc = invoke_cli("sweep", str(space), "--max-failures", "1", "--store", str(store))
    # Rule: when every recent trial failed, the sweep stops with exit 1 and one message naming the error
    assert proc.returncode == 1
    assert "the last 5 trials all failed" in " ".join(proc.stderr.split())
    assert "diverged" in proc.stderr and "Traceback" not in proc.stderr
    trials = [t for t in optuna_trials(store, "allfail") if t.state.name != "WAITING"]  # a queued retry may wait
    assert len(trials) == 5 and all(t.state.name == "FAIL" for t in trials)
    # Rule: --max-failures 1 retries a failed trial once, with the same values
    retries = [t for t in trials if "kerasweep.retry_of" in t.user_attrs]
    assert retries
    for retry in retries:
        assert retry.params == trials[retry.user_attrs["kerasweep.retry_of"]].params
        assert "kerasweep.retry_of" not in trials[retry.user_attrs["kerasweep.retry_of"]].user_attrs
    export = invoke_cli("export", "allfail", "--store", str(store))
    # Rule: exporting a sweep without a completed trial is bad input (exit 2) with a clear message
    assert export.returncode == 2 and "has no completed trial yet" in export.stderr
    parents, runs = sweep_runs(mlflow_client(store), "allfail", "allfail")
    # Rule: an aborted sweep's parent run is FAILED with the reason, not FINISHED
    assert len(parents) == 1 and parents[0].info.status == "FAILED"
    assert "the last 5 trials all failed" in parents[0].data.tags["kerasweep.error"]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    # Rule: no checkpoint or resumable copy is left for trials nobody will continue
    assert not list((store / "checkpoints" / "allfail").glob("trial-*/model.keras"))


def test_out_of_memory_trial_fails_with_the_reason_and_the_sweep_goes_on(tmp_path: Path) -> None:
    space = write_space(tmp_path, """
        name: oom
        model: tests.oom_model:build
        data: iris
        budget: {trials: 2, epochs: 2}
        search: {sampler: random, pruner: none, seed: 0}
        params:
          size: {type: int, low: 1, high: 16, default: 16}
    """)
    store = tmp_path / "store"
    proc = invoke_cli("sweep", str(space), "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    _, runs = sweep_runs(mlflow_client(store), "oom", "oom")
    failed = [r for r in runs if r.data.tags["kerasweep.state"] == "failed"]
    # Rule: the trial that ran out of memory (a real ResourceExhaustedError) is failed with the reason
    assert failed and all(r.data.tags["kerasweep.error"].startswith("out of memory:") for r in failed)
    assert all(r.data.params["size"] == "16" for r in failed)
    traceback = mlflow_client(store).download_artifacts(failed[0].info.run_id, "error.txt", str(tmp_path))
    assert "ResourceExhaustedError" in Path(traceback).read_text()
    # Rule: the sweep goes on to its budget
    assert sum(r.data.tags["kerasweep.state"] == "complete" for r in runs) == 2


@pytest.mark.parametrize("engine", [pytest.param(e, marks=pytest.mark.slow) if e == "ray" else e  # Ray: 30 s
                                    for e in ENGINES])
def test_a_builder_that_always_raises_stops_the_sweep_the_same_way_on_every_engine(tmp_path: Path, engine: str) -> None:
    space = write_space(tmp_path, """
        name: allfail
        model: tests.raising_model:build
        data: iris
        budget: {trials: 20, epochs: 2}
        params:
          learning_rate: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
    """)
    store = tmp_path / "store"
    proc = (run_cli if engine == "ray" else invoke_cli)("sweep", str(space), "--engine", engine, "--store", str(store))
    # Rule: the README's promise holds on every engine: 5 failed trials in a row stop the sweep with exit 1
    # and one message naming the error, no traceback
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = " ".join(proc.stderr.split())
    assert "the last 5 trials all failed" in said and "ValueError: this builder always fails" in said
    assert "Traceback" not in proc.stderr
    client = mlflow_client(store)
    parents, runs = sweep_runs(client, "allfail", "allfail")
    assert parents[0].info.status == "FAILED" and "the last 5 trials all failed" in parents[0].data.tags[ERROR_TAG]
    # Rule: the same tags and reasons everywhere: each trial run FAILED with the error and its traceback
    # (Ray may have started a sixth trial beside the fifth: two run at once on two cores)
    assert 5 <= len(runs) <= (6 if engine == "ray" else 5), len(runs)
    for run in runs:
        assert run.info.status == "FAILED" and run.data.tags["kerasweep.state"] == "failed"
        assert run.data.tags[ERROR_TAG] == "ValueError: this builder always fails"
        assert "error.txt" in [a.path for a in client.list_artifacts(run.info.run_id)]
