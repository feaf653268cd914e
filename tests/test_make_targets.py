"""The README's make targets, run through make itself: sweep, status, export, train, help."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import QUIET_ENV, ROOT


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **QUIET_ENV}, timeout=600)


def test_help_lists_every_target_the_readme_documents() -> None:
    listed = set(re.findall(r"make (\S+)", make("help").stdout))
    readme, docs = ((ROOT / page).read_text() for page in ("README.md", "docs/cli.md"))
    documented, in_docs = (set(re.findall(r"^\| `make ([a-z-]+)", text, re.MULTILINE)) for text in (readme, docs))
    # Rule: every make target in the README and docs exists and has a help line, and each is in both
    assert documented <= listed and in_docs <= listed, (documented | in_docs) - listed
    assert listed == documented == in_docs, (listed ^ documented, listed ^ in_docs)


def test_sweep_status_export_train_through_make(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    # the engine and sampler variables reach the CLI (the optuna default runs everywhere else)
    swept = make("sweep", "SPACE=mlp", "ENGINE=keras-tuner", "SAMPLER=random", "TRIALS=2", "EPOCHS=2",
                 "NAME=viamake", f"STORE={store}")
    assert swept.returncode == 0, swept.stdout + swept.stderr
    status = make("status", "SWEEP=viamake", f"STORE={store}")
    # Rule: make status shows the sweep with its engine and budget
    assert status.returncode == 0 and re.search(r"viamake\s+│\s+keras-tuner\s+│\s+2", status.stdout), status.stdout
    exported = make("export", "SWEEP=viamake", f"STORE={store}")
    assert exported.returncode == 0 and (tmp_path / "store" / "exports" / "viamake.yaml").exists()
    trained = make("train", f"CONFIG={store}/exports/viamake.yaml", "EPOCHS=1", f"STORE={store}")
    # Rule: make train saves the model and registers it
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert (tmp_path / "store" / "models" / "viamake.keras").exists()
    assert "models:/mlp/1" in trained.stdout
    # Rule: the targets that need a variable say so instead of failing obscurely
    assert make("export", f"STORE={store}").returncode == 2
    assert "usage: make export SWEEP=" in make("export", f"STORE={store}").stdout


def test_test_torch_says_how_to_install_torch_when_it_is_missing() -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed: make test-torch would run the contract suites on PyTorch")
    ran = make("test-torch")
    # Rule: without torch, one line naming the install command and exit 2, before any test runs
    assert ran.returncode == 2
    assert "test-torch: torch is not installed; .venv/bin/pip install torch" in ran.stderr


def test_test_gpu_skips_with_the_reason_where_no_gpu_is_seen() -> None:
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU may be seen here: make test-gpu would run on it")
    ran = make("test-gpu")
    # Rule: without a GPU the GPU checks skip (exit 0) and say why, so CI and laptops stay green
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "no GPU seen (nvidia-smi -L lists none)" in ran.stdout
