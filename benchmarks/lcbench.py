"""The LCBench surrogate (`benchmarks/lcbench_data/`, a copy of `../shared/lcbench`: YAHPO Gym, Apache-2.0):
real learning curves of funnel MLPs on OpenML tasks, answered by `onnxruntime` in microseconds, so a
search benchmark measures the search alone.

`curve(task, config)` is the validation accuracy (0 to 1) after each of the 52 epochs; `reference(task)`
the best and median accuracy at 52 epochs of 5,000 random configurations, which normalise regret.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

FOLDER = Path(os.environ.get("LCBENCH_DIR") or Path(__file__).resolve().with_name("lcbench_data"))  # a copy of ../shared/lcbench
EPOCHS = 52
#: the 20 tasks the surrogate's README names for developing search methods; the others are kept for checking
DEVELOPMENT_TASKS = (3945, 7593, 126025, 126029, 146212, 167104, 167161, 167181, 167185, 167190, 167200, 168329,
                     168330, 168335, 168868, 168908, 168910, 189354, 189866, 189873)
#: name -> (low, high, log, int), in the surrogate's input order after `epoch`
SPACE: dict[str, tuple[float, float, bool, bool]] = {
    "batch_size": (16, 512, True, True),
    "learning_rate": (1e-4, 1e-1, True, False),
    "momentum": (0.1, 0.99, False, False),
    "weight_decay": (1e-5, 0.1, False, False),
    "num_layers": (1, 5, False, True),
    "max_units": (64, 1024, True, True),
    "max_dropout": (0.0, 1.0, False, False),
}


def space_params() -> dict[str, dict[str, Any]]:
    """The LCBench space as a kerasweep space's `params:`."""
    return {name: {"type": "int" if whole else "float", "low": low, "high": high, "log": log}
            for name, (low, high, log, whole) in SPACE.items()}


def available() -> str | None:
    """Why the surrogate cannot run here (no model file, no onnxruntime), or None."""
    if not (FOLDER / "model.onnx").is_file():
        return f"no LCBench surrogate at {FOLDER} (set LCBENCH_DIR)"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed (pip install '.[bench]')"
    return None


@functools.cache
def _session() -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # microseconds per call: threads cost more than they give
    return onnxruntime.InferenceSession(str(FOLDER / "model.onnx"), options, providers=["CPUExecutionProvider"])


@functools.cache
def _task_index(task: int) -> int:
    codes = json.loads((FOLDER / "encoding.json").read_text())["OpenML_task_id"]
    if str(task) not in codes:
        raise SystemExit(f"--tasks: {task} is not an LCBench task; expected one of "
                         f"{', '.join(k for k in codes if k != '#na#')}")
    return int(codes[str(task)])


def predict(task: int, configs: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """Validation accuracy (0 to 1) of each row of `configs` (columns in SPACE's order) after `epochs`."""
    rows = np.column_stack([epochs, configs]).astype("float32")
    cat = np.full((len(rows), 1), _task_index(task), dtype="int32")
    return _session().run(None, {"x_cat": cat, "x_cont": rows})[0][:, 1].astype("float64") / 100.0


def curve(task: int, config: dict[str, float]) -> np.ndarray:
    """The accuracy after each epoch 1..52 of one configuration."""
    row = np.array([[config[name] for name in SPACE]], dtype="float64")
    return predict(task, np.repeat(row, EPOCHS, axis=0), np.arange(1, EPOCHS + 1))


def random_configs(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    columns = []
    for low, high, log, whole in SPACE.values():
        values = np.exp(rng.uniform(np.log(low), np.log(high), count)) if log else rng.uniform(low, high, count)
        columns.append(np.round(values) if whole else values)
    return np.column_stack(columns)


@functools.cache
def reference(task: int, count: int = 5000) -> tuple[float, float]:
    """(best, median) accuracy at 52 epochs over `count` random configurations: regret 0 and 1."""
    scores = predict(task, random_configs(count, seed=12345), np.full(count, EPOCHS))
    return float(scores.max()), float(np.median(scores))


def regret(task: int, accuracy: float) -> float:
    """Normalised regret: 0 at the random sample's best, 1 at its median (below 0: better than its best)."""
    best, median = reference(task)
    return (best - accuracy) / (best - median)


def build(values: Any, input_shape: Any, n_outputs: int) -> Any:
    """The space's model for kerasweep's checks; a benchmark trial trains on the surrogate instead."""
    raise RuntimeError("the LCBench benchmark answers trials from the surrogate; nothing trains")
