"""`SweepConfig`: one sweep's space, name, store and engine options; below the engines, imports none.

Built and checked by `search.sweep.make_config`; engines read it and never change it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kerasweep.search.space import Space
from kerasweep.search.store import Store

DEFAULT_STORE = Path(os.environ.get("KERASWEEP_STORE", "runs"))


@dataclass(frozen=True)
class SweepConfig:
    """One sweep: the parsed space (with CLI overrides applied) and where and how to run it."""

    space: Space
    name: str
    engine: str = "optuna"
    store: Store = field(default_factory=lambda: Store(DEFAULT_STORE))
    options: Any = None  # the engine's own frozen options (workers, storage, cpus per trial, ...)
    max_failures: int = 0  # retries of a failed trial (same values) before it stays failed
    max_failures_in_a_row: int = 5  # stop the sweep when this many trials in a row failed
    checkpoint_every_s: float = 60.0  # a running trial's resumable copy, at most this often (0: every epoch)
    verbose: bool = False
    debug: bool = False  # one trial, eager execution, Keras and TensorFlow logs: for a new builder
    first_points: tuple[dict[str, Any], ...] = ()  # values of a new sweep's first trials (--warm-start, --enqueue)
    started_from: dict[str, str] | None = None  # where those came from, tagged on the parent run
    # --warm-start: the old sweep's complete trials (values, objective values), prior evidence for the sampler
    evidence: tuple[tuple[dict[str, Any], tuple[float, ...]], ...] = ()
    parent_run_id: str | None = None  # filled in by run_sweep once the MLflow parent run exists
    deadline: float | None = None  # wall-clock time (time.time()) after which no trial starts; from budget.minutes
    tracking_uri: str | None = None  # None: the store's own MLflow file (or MLFLOW_TRACKING_URI)
    artifact_root: Path | None = None
    # what the data is and the baseline to beat (search.data_report), made when the data was checked; None
    # for a config read back for status or export
    report: Any = None
