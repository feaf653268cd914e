"""On a real GPU (`make test-gpu`; skipped where none is seen, so not in CI): the default packing of optuna
workers on the GPU, each trial training there, and production on the GPU answering raw rows.

The build machines have no GPU; these ran on a lent H100 with Keras on JAX (see README "Keras backends").
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import mlflow_client, run_cli, sweep_runs, write_space


def _gpus() -> int:
    if not shutil.which("nvidia-smi"):
        return 0
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _gpus(), reason="no GPU seen (nvidia-smi -L lists none)")]

def test_the_default_sweep_packs_four_workers_on_the_gpu_and_production_answers_raw_rows(tmp_path: Path) -> None:
    space = write_space(tmp_path, """
        name: ongpu
        model: tests.probe_model:build  # says where each trial trains
        data: iris
        budget: {trials: 8, epochs: 30}
        search: {pruner: none}
        params:
          units: {type: categorical, choices: [16, 32]}
          learning_rate: {type: float, low: 0.01, high: 0.05, log: true}
    """)
    store, probe = tmp_path / "store", tmp_path / "probe.jsonl"
    proc = run_cli("sweep", str(space), "--store", str(store), env={"PROBE_FILE": str(probe)})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    gpus = _gpus()
    # Rule: where GPUs are seen, the default is four workers per GPU, and the first line says so
    assert f"{4 * gpus} worker(s), 4 per GPU (default) on {gpus} GPU(s)" in " ".join(proc.stdout.split())
    seen = [json.loads(line) for line in probe.read_text().splitlines()]
    workers = [s for s in seen if s["KERASWEEP_GPU_MEMORY_FRACTION"] is not None]  # not the parent's own build
    # Rule: every trial trained on a GPU, in a worker started with its GPU and a quarter of its memory share
    assert len(workers) == 8 and {s["platform"] for s in workers} == {"gpu"}
    assert {s["KERASWEEP_GPU_MEMORY_FRACTION"] for s in workers} == {"0.225"}
    assert len({s["pid"] for s in workers}) == 4 * gpus
    _, runs = sweep_runs(mlflow_client(store, read_only=True), "ongpu", "ongpu")
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags.get("kerasweep.devices") for r in runs} == {"1"}

    trained = run_cli("train", str(store / "exports" / "ongpu.yaml"), "--store", str(store),
                      env={"PROBE_FILE": str(probe)})
    assert trained.returncode == 0, trained.stderr + trained.stdout
    assert json.loads(probe.read_text().splitlines()[-1])["platform"] == "gpu"  # production trained on the GPU too
    uri = f"sqlite:///{(store / 'mlflow.db').resolve()}"
    check = f"""
        import json
        import mlflow, numpy as np, pandas as pd
        from sklearn.datasets import load_iris
        mlflow.set_tracking_uri({uri!r})
        bunch = load_iris()
        model = mlflow.pyfunc.load_model("models:/ongpu/1")
        answers = np.asarray(model.predict(pd.DataFrame(bunch.data, columns=bunch.feature_names)))
        print(json.dumps({{"accuracy": float(np.mean(answers.astype(int) == bunch.target))}}))
    """
    fresh = subprocess.run([sys.executable, "-c", textwrap.dedent(check)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, check=False)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    # Rule: the registered model, loaded in a fresh process, answers raw rows (the bundled iris: class numbers);
    # GPU training is not bit-reproducible, so the bar is well clear of chance (1/3), not a trial's exact value
    assert json.loads(fresh.stdout.strip().splitlines()[-1])["accuracy"] >= 0.75
