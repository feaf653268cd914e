"""KerasTuner engine: the space in KerasTuner's terms, its three oracles, failures, crash and resume.

The shared behaviour (MLflow shape, states, export, status) is in test_engine_contract.py.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from kerasweep.search.engines.keras_tuner import CONTINUES_TAG, KT_ID_TAG, make_oracle
from kerasweep.search.lifecycle import ORPHAN_REASON
from kerasweep.search.space import load_space
from kerasweep.search.tracking import ERROR_TAG, RETRY_TAG, STATE_TAG
from tests.conftest import invoke_cli, mlflow_client, run_cli, start_cli, sweep_runs, write_space, wait_for

SPACE = """
    name: kt
    model: mlp
    data: wine
    budget: {trials: 4, epochs: 2}
    params:
      learning_rate: {type: float, low: 1.0e-3, high: 3.0e-2, log: true, default: 1.0e-2}
      optimizer: {type: categorical, choices: [adam, sgd, rmsprop], default: adam}
      momentum: {type: float, low: 0.5, high: 0.9, when: {optimizer: [sgd, rmsprop]}}
      nesterov: {type: categorical, choices: [true, false], when: {optimizer: sgd}}
      units: {type: int, low: 8, high: 32, step: 8}
      layers: {type: int, low: 1, high: 8, log: true}
"""


def test_space_translates_to_hyperparameters(tmp_path: Path) -> None:
    space = load_space(write_space(tmp_path, SPACE + "    search: {sampler: random}\n", "kt.yaml"))
    oracle = make_oracle(space)
    first = oracle.populate_space("0")["values"]
    # Rule: a new search starts from the declared defaults (inactive conditionals absent)
    assert {k: first[k] for k in ("learning_rate", "optimizer")} == {"learning_rate": 1.0e-2, "optimizer": "adam"}
    assert "momentum" not in first and "nesterov" not in first
    oracle.trials["0"] = None  # what the oracle records once a trial runs: later samples are random
    seen = []
    for i in range(1, 200):
        values = oracle.populate_space(str(i))["values"]
        seen.append(values)
        # Rule: bounds, log sampling and steps as declared; conditionals only under their parent's values
        assert 1.0e-3 <= values["learning_rate"] <= 3.0e-2
        assert values["units"] in (8, 16, 24, 32) and 1 <= values["layers"] <= 8
        assert ("momentum" in values) == (values["optimizer"] in ("sgd", "rmsprop"))
        assert ("nesterov" in values) == (values["optimizer"] == "sgd")
    rates = sorted(v["learning_rate"] for v in seen)
    assert rates[len(rates) // 2] < 0.012  # log sampling: the median sits near the geometric mean (5.5e-3)
    assert Counter(v["optimizer"] for v in seen).keys() == {"adam", "sgd", "rmsprop"}


@pytest.mark.parametrize("sampler", ["random", "bayesian"])
def test_random_and_bayesian_oracles_run_full_trials(sampler: str, tmp_path: Path) -> None:
    space = write_space(tmp_path, SPACE, "kt.yaml")
    store = tmp_path / "store"
    proc = invoke_cli("sweep", str(space), "--engine", "keras-tuner", "--sampler", sampler, "--trials", "3",
                   "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    _, runs = sweep_runs(mlflow_client(store), "kt", "kt")
    # Rule: without Hyperband every trial trains the budget's epochs and ends complete
    assert sorted(r.data.tags[STATE_TAG] for r in runs) == ["complete"] * 3
    assert len({r.data.tags[KT_ID_TAG] for r in runs}) == 3
    # Rule: KerasTuner's own files live under the store, per sweep
    trial_files = list((store / "keras_tuner" / "kt").glob("trial_*/trial.json"))
    assert len(trial_files) == 3
    assert {json.loads(f.read_text())["status"] for f in trial_files} == {"COMPLETED"}


def test_sampler_of_another_engine_is_rejected(tmp_path: Path) -> None:
    space = write_space(tmp_path, SPACE, "kt.yaml")
    proc = invoke_cli("sweep", str(space), "--engine", "keras-tuner", "--sampler", "cmaes", "--store", str(tmp_path / "s"))
    # Rule: an engine/sampler mismatch is bad input, named, before anything is written
    assert proc.returncode == 2
    assert "'cmaes' does not run on engine 'keras-tuner'; expected one of hyperband, random, bayesian" in proc.stderr
    assert not (tmp_path / "s").exists()


def test_failed_trials_are_recorded_and_retried(tmp_path: Path) -> None:
    space = write_space(tmp_path, """
        name: ktfail
        model: mlp
        data: iris
        budget: {trials: 3, epochs: 2}
        search: {sampler: random, seed: 1}
        params:
          learning_rate: {type: categorical, choices: [0.05, 0.1, 1.0e+12], default: 1.0e+12}
          units: {type: int, low: 8, high: 64}
        fixed: {optimizer: sgd}
    """)
    store = tmp_path / "store"
    proc = invoke_cli("sweep", str(space), "--engine", "keras-tuner", "--max-failures", "1", "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    client = mlflow_client(store)
    _, runs = sweep_runs(client, "ktfail", "ktfail")
    states = Counter(r.data.tags[STATE_TAG] for r in runs)
    # Rule: the diverging first trial fails, is retried once (--max-failures 1), fails again; the sweep goes on
    assert states["complete"] == 3 and states["failed"] >= 2
    failed = sorted((r for r in runs if r.data.tags[STATE_TAG] == "failed"), key=lambda r: int(r.data.tags["kerasweep.trial"]))
    assert all(r.data.tags[ERROR_TAG].startswith("diverged: loss became") for r in failed)
    assert failed[1].data.tags[RETRY_TAG] == failed[0].data.tags["kerasweep.trial"]
    assert failed[0].data.tags[KT_ID_TAG] == failed[1].data.tags[KT_ID_TAG]
    assert all("error.txt" in [a.path for a in client.list_artifacts(r.info.run_id)] for r in failed)


def _kt_statuses(store: Path, name: str) -> list[str]:
    statuses = []
    for path in (store / "keras_tuner" / name).glob("trial_*/trial.json"):
        try:
            statuses.append(json.loads(path.read_text())["status"])
        except (OSError, ValueError):  # being written
            pass
    return statuses


@pytest.mark.slow  # about a minute; CI runs it with make test-slow
def test_sigkill_mid_bracket_then_rerun_resumes_the_bracket(tmp_path: Path) -> None:
    # Hyperband with 9 epochs: bracket 2 runs 9 one-epoch trials, then promotes the best 3 to 3 epochs.
    space = write_space(tmp_path, """
        name: ktcrash
        model: mlp
        data: wine
        budget: {trials: 40, epochs: 9}
        params:
          learning_rate: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
          units: {type: int, low: 8, high: 32, step: 8}
        fixed: {patience: 100}
    """)
    store = tmp_path / "store"
    proc = start_cli("sweep", str(space), "--engine", "keras-tuner", "--store", str(store))
    def mid_trial() -> bool:  # KerasTuner marked it running and its MLflow run is open (the store exists by then)
        statuses = _kt_statuses(store, "ktcrash")
        return statuses.count("COMPLETED") >= 2 and "RUNNING" in statuses and any(
            r.info.status == "RUNNING" for r in sweep_runs(mlflow_client(store, read_only=True), "ktcrash", "ktcrash")[1])

    wait_for(mid_trial, proc, 240, 0.1, "two trials done and one mid-way")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    before = _kt_statuses(store, "ktcrash")
    assert "RUNNING" in before and before.count("COMPLETED") < 9  # killed inside the bracket's first round

    budget = 11  # the 9 one-epoch trials of the first round and 2 promotions
    again = run_cli("sweep", str(space), "--engine", "keras-tuner", "--trials", str(budget), "--store", str(store))
    assert again.returncode == 0, again.stderr + again.stdout
    parents, runs = sweep_runs(mlflow_client(store), "ktcrash", "ktcrash")
    states = [r.data.tags[STATE_TAG] for r in runs]
    # Rule: one parent; the budget of complete + pruned trials; the crashed attempt failed, nothing RUNNING
    assert len(parents) == 1
    assert states.count("complete") + states.count("pruned") == budget
    assert states.count("failed") == 1
    assert not [r for r in runs if r.info.status == "RUNNING"]
    failed = next(r for r in runs if r.data.tags[STATE_TAG] == "failed")
    assert failed.data.tags[ERROR_TAG] == ORPHAN_REASON
    # Rule: no trial number twice; KerasTuner retried the crashed trial under its id, as a new run
    numbers = sorted(int(r.data.tags["kerasweep.trial"]) for r in runs)
    assert numbers == list(range(len(runs)))
    retry = next(r for r in runs if r.data.tags.get(RETRY_TAG) == failed.data.tags["kerasweep.trial"])
    assert retry.data.tags[KT_ID_TAG] == failed.data.tags[KT_ID_TAG]
    # Rule: the bracket went on across the crash: promoted rounds continue trials from before it
    continued = [r for r in runs if CONTINUES_TAG in r.data.tags]
    assert len(continued) == 2
    first_round_ids = {r.data.tags[KT_ID_TAG] for r in runs if CONTINUES_TAG not in r.data.tags}
    assert {r.data.tags[CONTINUES_TAG] for r in continued} <= first_round_ids


@pytest.mark.slow  # about a minute; CI runs it with make test-slow
def test_crashed_trial_is_retried_from_its_last_saved_epoch(tmp_path: Path) -> None:
    from kerasweep.search.store import Store
    from kerasweep.trainers.fit import latest_backup

    space = write_space(tmp_path, """
        name: ktresume
        model: mlp
        data: wine
        budget: {trials: 3, epochs: 30}
        params:
          learning_rate: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
        fixed: {patience: 100}
    """)
    store = tmp_path / "store"
    args = ["sweep", str(space), "--engine", "keras-tuner", "--sampler", "random", "--checkpoint-every", "0",
            "--store", str(store)]
    proc = start_cli(*args)
    def backed_up() -> bool:
        found = [latest_backup(p) for p in (Store(store).keras_tuner / "ktresume").glob("trial_*/resume")]
        return any(f is not None and f.epoch >= 2 for f in found)

    wait_for(backed_up, proc, 240, 0.1, "a trial's backup at epoch 2")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr + again.stdout
    client = mlflow_client(store)
    _, runs = sweep_runs(client, "ktresume", "ktresume")
    failed = next(r for r in runs if r.data.tags[STATE_TAG] == "failed")
    retry = next(r for r in runs if r.data.tags.get(RETRY_TAG) == failed.data.tags["kerasweep.trial"])
    # Rule: KerasTuner's retry of the crashed trial continues from its last saved epoch, one curve
    saved = int(retry.data.tags["kerasweep.resumed_from_epoch"])
    assert saved >= 2 and retry.data.tags[STATE_TAG] == "complete"
    steps = [m.step for m in client.get_metric_history(retry.info.run_id, "val_accuracy")]
    assert steps == list(range(1, 31))
    before = {m.step: m.value for m in client.get_metric_history(failed.info.run_id, "val_accuracy")}
    copied = {m.step: m.value for m in client.get_metric_history(retry.info.run_id, "val_accuracy") if m.step <= saved}
    assert copied == {e: before[e] for e in range(1, saved + 1)}
    assert sum(r.data.tags[STATE_TAG] in ("complete", "pruned") for r in runs) == 3


@pytest.mark.parametrize("builder", ["user", pytest.param("shipped", marks=pytest.mark.slow)])
def test_a_continued_round_that_ranks_first_exports_its_values_and_trains_them(builder: str, tmp_path: Path) -> None:
    import keras
    import yaml

    # Hyperband with 3 epochs: three 1-epoch rounds (pruned), then the best continues to 3 epochs, the one complete
    text = SPACE.replace("budget: {trials: 4, epochs: 2}", "budget: {trials: 4, epochs: 3}") if builder == "shipped" \
        else "name: kt\nmodel: examples.keras_tuner_getting_started:build_model\ndata: digits\nbudget: {trials: 4, epochs: 3}\n"
    write_space(tmp_path, text)
    store = tmp_path / "store"
    swept = invoke_cli("sweep", str(tmp_path / "space.yaml"), "--engine", "keras-tuner", "--store", str(store))
    assert swept.returncode == 0, swept.stderr + swept.stdout
    _, runs = sweep_runs(mlflow_client(store), "kt", "kt")
    by_id = {r.data.tags[KT_ID_TAG]: r for r in runs}
    (winner,) = [r for r in runs if r.data.tags[STATE_TAG] == "complete"]
    parent = by_id[winner.data.tags[CONTINUES_TAG]]
    logged = json.loads(winner.data.tags["kerasweep.params"])
    # Rule: a continued round logs the values it trains with: its parent's (never an empty set)
    assert logged and logged == json.loads(parent.data.tags["kerasweep.params"])
    export = store / "exports" / "kt.yaml"
    assert yaml.safe_load(export.read_text())["params"] == logged
    trained = run_cli("train", str(export), "--store", str(store), "--epochs", "1")
    assert trained.returncode == 0, trained.stderr + trained.stdout
    rate = float(keras.ops.convert_to_numpy(keras.models.load_model(store / "models" / "kt.keras").optimizer.learning_rate))
    # Rule: production trains the winner's learning rate, the one its trial logged
    assert rate == pytest.approx(logged["lr" if builder == "user" else "learning_rate"], rel=1e-6)
