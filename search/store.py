"""The store folder: every path in it (`Store`), the checks that it can hold a sweep, its SQLite URLs.

Every check here runs before TensorFlow loads and before anything is created, so a store that cannot
work (a path through a file, a read-only disk, a damaged database) costs one line and exit code 2.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kerasweep.search.errors import UserInputError

SQLITE_HEADER = b"SQLite format 3\x00"
MIN_FREE_BYTES = 100 * 2**20  # a small sweep's databases, checkpoints and resumable copies
URL_UNSAFE = "?#%"  # would end or re-encode the path inside an SQLite URL (MLflow and Optuna parse it)


@dataclass(frozen=True)
class Store:
    """Every path under one store folder (default `runs/`); nothing else joins path pieces.

    Layout: `mlflow.db` + `mlartifacts/` (MLflow), `optuna.db`, `ray/<sweep>/`, `keras_tuner/<sweep>/`
    (engine state), `sweeps/<sweep>.json` (which engine and space), `checkpoints/<sweep>/trial-<n>/`
    (a trial's model while it trains and its resumable copy), `tensorboard/<sweep>/<trial>/`,
    `exports/<sweep>.yaml`, `models/<config>.keras` (production).
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def __str__(self) -> str:
        return str(self.root)

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def artifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def records(self) -> Path:
        """The folder of sweep records (`sweeps/<name>.json`)."""
        return self.root / "sweeps"

    def record(self, sweep: str) -> Path:
        return self.records / f"{sweep}.json"

    def checkpoints(self, sweep: str) -> Path:
        return self.root / "checkpoints" / sweep

    def trial_folder(self, sweep: str, number: int) -> Path:
        return self.checkpoints(sweep) / f"trial-{number}"

    def checkpoint(self, sweep: str, number: int) -> Path:
        """Trial `number`'s best model, saved when it ends (MLflow keeps it once the trial is complete)."""
        return self.trial_folder(sweep, number) / "model.keras"

    def backups(self, sweep: str, number: int) -> Path:
        """Where trial `number` keeps its resumable copy while it trains (a retry continues from it)."""
        return self.trial_folder(sweep, number) / "resume"

    @property
    def tensorboard_root(self) -> Path:
        return self.root / "tensorboard"

    def tensorboard(self, sweep: str, run: str | None = None) -> Path:
        """TensorBoard logs of a sweep, or of one of its runs (`trial-3`, `ray-<id>`)."""
        folder = self.tensorboard_root / sweep
        return folder / run if run else folder

    def ray_experiment(self, sweep: str) -> Path:
        """Ray Tune's experiment state and checkpoints (absolute: Ray's storage path must be)."""
        return (self.root / "ray").resolve() / sweep

    @property
    def keras_tuner(self) -> Path:
        """KerasTuner's project folder: `<this>/<sweep>/` holds a sweep's oracle and trials."""
        return (self.root / "keras_tuner").resolve()

    def export(self, sweep: str) -> Path:
        return self.root / "exports" / f"{sweep}.yaml"

    def production_model(self, config: str) -> Path:
        return self.root / "models" / f"{config}.keras"

    def production_tensorboard(self, config: str) -> Path:
        return self.tensorboard_root / "production" / config


def sqlite_url(path: Path) -> str:
    """`sqlite:///<absolute path>` for a database file in the store (see `check_store` for the rule)."""
    resolved = path.resolve()
    bad = sorted({c for c in str(resolved) if c in URL_UNSAFE})
    if bad:
        raise UserInputError(f"--store: {resolved.parent} holds {' '.join(map(repr, bad))}, which an SQLite URL "
                             f"cannot carry (the database would be written elsewhere); pick a folder without {URL_UNSAFE}")
    return f"sqlite:///{resolved}"


def check_store(store: Path | Store) -> None:
    """The store can be created (or is) a writable folder whose path fits in an SQLite URL."""
    paths = store if isinstance(store, Store) else Store(store)
    store = paths.root
    sqlite_url(store / "x.db")
    existing = store
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == store else f"lies under {existing}, which is a file"
        raise UserInputError(f"--store: {store} {where}, not a folder; pass a folder path (default runs/)")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == store else f" ({existing}, where it would be created)"
        raise UserInputError(f"--store: {store} is not writable{where}; pass a folder you can write to")
    for database in (paths.mlflow_db, paths.optuna_db):
        check_sqlite_file(database)
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise UserInputError(f"--store: {store} has {megabytes(free)} free on its disk; a sweep needs at least "
                             f"{megabytes(MIN_FREE_BYTES)}: free space there, or pass --store on another disk")


def megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def check_sqlite_file(path: Path) -> None:
    """An existing database file in the store is SQLite (not truncated to garbage or replaced)."""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read ({exc.strerror}); check its permissions") from None
    if header and header != SQLITE_HEADER:
        raise UserInputError(f"{path}: not an SQLite database (damaged or replaced); restore it from a backup, "
                             "or move it away and pass a new --name to start afresh")


def folder_agrees_with_mlflow(path: Path, what: str, logged: set[int], parent_exists: bool) -> str | None:
    """For an engine whose state is a folder (Ray's experiment, KerasTuner's oracle): the problem when that
    folder and MLflow (`logged`: trial numbers with a run) disagree about whether the sweep exists."""
    if logged and not path.exists():
        return (f"MLflow holds {len(logged)} trial runs but the {what} {path} is missing: it was removed or the "
                "store was copied without it. Restore it, or pass a new --name to start a new sweep")
    if path.exists() and not parent_exists:
        return (f"the {what} {path} exists but the MLflow store has no parent run for it: that store was reset, "
                "replaced or is another one (MLFLOW_TRACKING_URI). Restore it, or pass a new --name")
    return None
