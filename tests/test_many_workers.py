"""Several worker processes on one Optuna storage: SQLite on one machine, a real PostgreSQL server."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
import pytest

from tests.conftest import mlflow_client, run_cli, sweep_runs, write_space

TRIALS = 8
SPACE = f"""
    name: many
    model: mlp
    data: iris
    budget: {{trials: {TRIALS}, epochs: 2}}
    search: {{sampler: tpe, pruner: none}}
    params:
      learning_rate: {{type: float, low: 1.0e-3, high: 1.0e-1, log: true}}
      units: {{type: int, low: 4, high: 16}}
"""


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def test_four_workers_run_exactly_the_budget(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = tmp_path / "store"
    space = write_space(tmp_path, SPACE)
    storage = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    args = ["sweep", str(space), "--workers", "4", "--store", str(store)] + (["--storage", storage] if storage else [])
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    # Rule: no "database is locked" or other storage errors on the way
    assert "locked" not in proc.stderr.lower() and "Traceback" not in proc.stderr
    url = storage or f"sqlite:///{store / 'optuna.db'}"
    trials = optuna.load_study(study_name="many", storage=url).get_trials(deepcopy=False)
    counted = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    # Rule: exactly N trials, no trial number twice, every worker took part
    assert len(counted) == TRIALS
    assert len({t.number for t in trials}) == len(trials)
    assert len({t.user_attrs["kerasweep.owner"] for t in counted}) == 4
    parents, runs = sweep_runs(mlflow_client(store), "many", "many")
    # Rule: one MLflow run per counted trial, one parent
    assert len(parents) == 1
    per_trial = Counter(int(r.data.tags["kerasweep.trial"]) for r in runs if r.data.tags["kerasweep.state"] == "complete")
    assert sorted(per_trial) == sorted(t.number for t in counted) and set(per_trial.values()) == {1}


def test_journal_file_storage(tmp_path: Path) -> None:
    store = tmp_path / "store"
    journal = tmp_path / "optuna.journal"
    proc = run_cli("sweep", str(write_space(tmp_path, SPACE)), "--trials", "3", "--storage", str(journal),
                   "--store", str(store))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    trials = optuna.load_study(study_name="many", storage=JournalStorage(JournalFileBackend(str(journal))))
    # Rule: --storage FILE.journal keeps the study in Optuna's journal file, not in the store's SQLite
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials.get_trials()) == 3
    assert not (store / "optuna.db").exists()
    status = run_cli("status", "many", "--store", str(store))
    assert status.returncode == 0 and "many" in status.stdout
