"""The store folder: checks that it can hold a sweep, and the SQLite URLs of the files in it.

Every check here runs before TensorFlow loads and before anything is created, so a store that cannot
work (a path through a file, a read-only disk, a damaged database) costs one line and exit code 2.
"""

from __future__ import annotations

import os
from pathlib import Path

from search.errors import UserInputError

SQLITE_HEADER = b"SQLite format 3\x00"
URL_UNSAFE = "?#%"  # would end or re-encode the path inside an SQLite URL (MLflow and Optuna parse it)


def sqlite_url(path: Path) -> str:
    """`sqlite:///<absolute path>` for a database file in the store (see `check_store` for the rule)."""
    resolved = path.resolve()
    bad = sorted({c for c in str(resolved) if c in URL_UNSAFE})
    if bad:
        raise UserInputError(f"--store: {resolved.parent} holds {' '.join(map(repr, bad))}, which an SQLite URL "
                             f"cannot carry (the database would be written elsewhere); pick a folder without {URL_UNSAFE}")
    return f"sqlite:///{resolved}"


def check_store(store: Path) -> None:
    """The store can be created (or is) a writable folder whose path fits in an SQLite URL."""
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
    for name in ("mlflow.db", "optuna.db"):
        check_sqlite_file(store / name)


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
