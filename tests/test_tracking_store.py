"""A new SQLite tracking store starts from a cached copy of MLflow's schema instead of migrating."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from search.tracking import Tracker, seed_new_store, tracking_uri_for


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "cache" / "kerasweep"


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        return connection.execute("select version_num from alembic_version").fetchone()[0]


def test_new_stores_are_copies_of_one_cached_schema(tmp_path: Path, cache: Path) -> None:
    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    seed_new_store(first)
    seed_new_store(second)
    templates = list(cache.glob("mlflow-*-schema.db"))
    # Rule: one template per MLflow version, at the schema's current revision, copied into each new store
    assert len(templates) == 1
    assert _revision(first) == _revision(second) == _revision(templates[0])
    assert first.read_bytes() == templates[0].read_bytes()


def test_a_seeded_store_works_and_is_never_overwritten(tmp_path: Path, cache: Path) -> None:
    store = tmp_path / "store"
    tracker = Tracker(tracking_uri_for(store))
    experiment = tracker.experiment_id("digits-cnn")
    run = tracker.client.create_run(experiment)
    tracker.client.log_metric(run.info.run_id, "val_accuracy", 0.9, step=1)
    seed_new_store(store / "mlflow.db")  # a second start on the same store
    again = Tracker(tracking_uri_for(store))
    # Rule: MLflow accepts the copy as current (no migration) and an existing store keeps its data
    history = again.client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(1, 0.9)]
    assert {e.name for e in again.client.search_experiments()} == {"Default", "digits-cnn"}
