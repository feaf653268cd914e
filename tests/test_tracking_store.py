"""A new SQLite tracking store starts whole, from a cached copy of MLflow's schema instead of migrating,
and commands that open one new store at once all start."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kerasweep.search.tracking import Tracker, seed_new_store, tracking_uri_for


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


OPEN_STORE = "import sys; from pathlib import Path; from kerasweep.search.tracking import Tracker; Tracker.for_store(Path(sys.argv[1])).experiment_id('x')"


def test_commands_opening_one_new_store_at_once_all_start(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    # no writable cache: the case where each command built the schema in place, and two at once broke it
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "not-a-folder")}
    (tmp_path / "not-a-folder").write_text("")
    env.pop("MLFLOW_TRACKING_URI", None)
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_STORE, str(store)], env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    # Rule: every command starts (before: 6 of 12 failed on Alembic's "expected to match one row"); one
    # whole schema, no half-made file left behind
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n".join(e[-800:] for e in errors)
    assert _revision(store / "mlflow.db")
    assert sorted(p.name for p in store.iterdir() if p.name.startswith("mlflow.db")) == ["mlflow.db"]


def test_opening_a_store_another_program_is_creating_waits_for_it(tmp_path: Path, cache: Path) -> None:
    from alembic.util.exc import CommandError
    from mlflow.tracking import MlflowClient

    attempts = []

    class HalfMadeStore(MlflowClient):
        """The errors MLflow raises while another process still migrates the file, then a client."""

        def __init__(self, tracking_uri: str) -> None:
            attempts.append(tracking_uri)
            if len(attempts) == 1:
                raise CommandError("Online migration expected to match one row when updating 'a' to 'b'")
            super().__init__(tracking_uri=tracking_uri)

    tracker = Tracker(tracking_uri_for(tmp_path / "store"))
    client = tracker._open(HalfMadeStore)
    # Rule: retried, not a failed command
    assert len(attempts) == 2 and client.search_experiments()


def test_the_ui_on_a_new_store_creates_it_whole_before_its_server_starts(tmp_path: Path, cache: Path) -> None:
    from kerasweep.search.servers import ui_command

    store = tmp_path / "store"
    command = ui_command(store, 5999)
    # Rule: the store exists at the current schema before `mlflow server` runs, so a sweep started meanwhile
    # never meets a file the server is still migrating
    assert _revision(store / "mlflow.db") == _revision(next(cache.glob("mlflow-*-schema.db")))
    assert command[command.index("--backend-store-uri") + 1] == tracking_uri_for(store)
