"""The quality bar of the shipped `cnn` space: its full default budget, timed (slow; `make test-slow`)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import optuna_trials, run_cli


@pytest.mark.slow
def test_default_cnn_sweep_reaches_098_in_under_3_minutes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    started = time.monotonic()
    proc = run_cli("sweep", "cnn", "--store", str(store))
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr + proc.stdout
    trials = optuna_trials(store, "cnn")
    best = max(t.value for t in trials if t.state.name == "COMPLETE")
    print(f"default cnn sweep: {elapsed:.1f}s, best val_accuracy {best:.4f}, "
          f"states {sorted((s, sum(t.state.name == s for t in trials)) for s in {t.state.name for t in trials})}")
    # Rule (issue 2): the default budget reaches val_accuracy >= 0.98 on digits
    assert best >= 0.98
    # The 3-minute bar is for a 2-core CPU machine; it is reported above, not asserted (no timing asserts).
