"""The Keras backend's runtime: which backend trains, what it sees, and how it shares a GPU.

Keras 3 runs the same model code on TensorFlow, JAX or PyTorch (`KERAS_BACKEND`, default tensorflow).
Only this module and the data pipeline know the difference: device set-up (memory growth or a memory
share per process, CPU thread pools), several GPUs per trial, and the mixed-precision choice.

A process's share of its GPU comes from the environment it is started with (`MEMORY_FRACTION_ENV`,
plus JAX's own variables, which JAX reads at import): the optuna engine packs `--trials-per-gpu` workers
on one GPU that way, and a test can check which worker got which share without a GPU.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
MEMORY_FRACTION_ENV = "KERASWEEP_GPU_MEMORY_FRACTION"  # this process's share of its GPU's memory, 0 < f <= 1
# mixed precision pays only where matrix work outweighs the casts: on the probe's models (20k to 1M parameters,
# ../shared/gpu-probe.md) mixed_float16 was 1.3 to 2 times slower on an H200, so it is chosen for big models alone
MIXED_PRECISION_MIN_PARAMS = 20_000_000


def name() -> str:
    """The backend Keras runs on in this process (`KERAS_BACKEND`, else Keras' default, tensorflow)."""
    import keras

    return keras.backend.backend()


def _chosen() -> tuple[str, str]:
    """The backend Keras will load and where that was said, as Keras decides it: `KERAS_BACKEND`, else the
    "backend" of keras.json in KERAS_HOME (default ~/.keras), else tensorflow."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], "KERAS_BACKEND"
    home = os.path.expanduser("~") if os.access(os.path.expanduser("~"), os.W_OK) else "/tmp"  # as Keras picks
    config = Path(os.environ.get("KERAS_HOME") or Path(home) / ".keras") / "keras.json"
    try:
        chosen = json.loads(config.read_text()).get("backend")
    except (OSError, ValueError, AttributeError):  # absent or unreadable: Keras falls back to its default too
        chosen = None
    return (str(chosen), f"{config}: backend") if chosen else ("tensorflow", "KERAS_BACKEND")


def wanted() -> str:
    """The backend this process will run on, read without importing Keras (the CLI checks it up front)."""
    return _chosen()[0]


def backend_problem() -> str | None:
    """One line when the chosen backend is not one kerasweep runs on, or is not installed."""
    chosen, where = _chosen()
    if chosen not in BACKENDS:
        return f"{where}: {chosen!r} is not a backend kerasweep runs on; expected one of {', '.join(BACKENDS)}"
    if importlib.util.find_spec(chosen) is None:
        undo = "unset KERAS_BACKEND" if where == "KERAS_BACKEND" else "set KERAS_BACKEND=tensorflow"
        return f"{where}: {chosen} is not installed in this environment; pip install {chosen}, or {undo}"
    return None


def prepare_environment() -> None:
    """Before the backend is imported: allocate GPU memory on demand in every process of a sweep (the CLI
    builds a user's model once to check it, and its workers share the GPUs; TensorFlow and JAX would each
    take most of a GPU at their first op)."""
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def gpu_count() -> int:
    """GPUs this process sees, as its backend counts them."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(1 for d in jax.devices() if d.platform == "gpu")
    import torch

    return torch.cuda.device_count()


def visible_gpus() -> list[str]:
    """The GPUs worker processes may be pinned to, without starting a backend: CUDA_VISIBLE_DEVICES when
    set, else what nvidia-smi lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU")]


def worker_environment(gpus: list[str], slot: int, per_gpu: int) -> dict[str, str]:
    """The environment of worker `slot` when `per_gpu` workers share each of `gpus`: its GPU (round robin)
    and its share of that GPU's memory (a little under 1/per_gpu, leaving room for the CUDA contexts)."""
    if not gpus:
        return {}
    env = {"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]}
    if per_gpu > 1:
        share = f"{0.9 / per_gpu:.3f}"
        # JAX reads these at import; without them its first process takes 75% of the GPU and the next one fails
        env.update({MEMORY_FRACTION_ENV: share, "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                    "XLA_PYTHON_CLIENT_MEM_FRACTION": share})
    return env


def _memory_fraction() -> float | None:
    raw = os.environ.get(MEMORY_FRACTION_ENV)
    return float(raw) if raw else None


def configure(parallel_trials: int = 1, threads: int | None = None) -> int:
    """Set up the backend once per process, before its first op; returns the GPUs it sees.

    GPU: TensorFlow grows its memory as needed, JAX allocates on demand within this process's share (read
    from the environment at import), PyTorch keeps to its share. CPU:
    thread pools sized so `parallel_trials` trials share the cores instead of fighting for them
    (`threads` fixes the size instead, e.g. a Ray trial's CPU reservation).
    """
    backend, fraction = name(), _memory_fraction()
    cpu_threads = threads or max(1, (os.cpu_count() or 1) // max(1, parallel_trials))
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        try:
            for gpu in gpus:  # packed workers share a GPU by taking memory as they need it
                tf.config.experimental.set_memory_growth(gpu, True)
            if not gpus:
                tf.config.threading.set_intra_op_parallelism_threads(cpu_threads)
                tf.config.threading.set_inter_op_parallelism_threads(min(2, cpu_threads))
        except RuntimeError:  # the runtime already started (e.g. in a notebook); keep its settings
            pass
        return len(gpus)
    if backend == "torch":
        import torch

        count = torch.cuda.device_count()
        if count and fraction:
            for index in range(count):
                torch.cuda.set_per_process_memory_fraction(fraction, index)
        elif not count:
            torch.set_num_threads(cpu_threads)
        return count
    return gpu_count()  # jax: its memory share and preallocation are read from the environment at import


def precision(chosen: bool | None, model_params: int, gpus: int) -> str:
    """The dtype policy a trial trains under: the space's `mixed_precision` when set, else mixed_float16
    only for big models on a GPU (MIXED_PRECISION_MIN_PARAMS), float32 otherwise."""
    if chosen is None:
        chosen = gpus > 0 and model_params >= MIXED_PRECISION_MIN_PARAMS
    return "mixed_float16" if chosen else "float32"


def keeps_uneven_last_batch() -> bool:
    """Whether a last, smaller batch may still be split over several devices: TensorFlow's strategies split
    it (4 + 3 rows) and Keras sums it right; JAX's DataParallel cannot split it at all."""
    return name() == "tensorflow"


def devices_in_use() -> int:
    """How many devices one trial trains across now (inside `distribution`): its replicas or its mesh."""
    if name() == "tensorflow":
        import tensorflow as tf

        return int(tf.distribute.get_strategy().num_replicas_in_sync)
    import keras

    current = keras.distribution.distribution()
    return int(current.device_mesh.devices.size) if current is not None else 1


@contextlib.contextmanager
def distribution() -> Iterator[int]:
    """Build, compile and fit inside this: with several GPUs, one trial trains on all of them (TensorFlow's
    MirroredStrategy, or TPUStrategy when TPU_NAME names one; JAX's DataParallel). Yields the number of
    devices, which every batch must split evenly over (see `data.make_pipeline`)."""
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        if os.environ.get("TPU_NAME"):  # only then: probing for a TPU otherwise waits on network timeouts
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ["TPU_NAME"])
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy = tf.distribute.TPUStrategy(resolver)
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            strategy = tf.distribute.MirroredStrategy()
        else:
            strategy = tf.distribute.get_strategy()
        with strategy.scope():
            yield int(strategy.num_replicas_in_sync)
        return
    if backend == "jax":
        import keras

        devices = keras.distribution.list_devices()  # its GPUs, else its CPU devices (XLA_FLAGS may make several)
        if len(devices) > 1:
            previous = keras.distribution.distribution()
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            try:
                yield len(devices)
            finally:  # what follows the trial (a one-row latency measure, the next trial's set-up) runs undistributed
                keras.distribution.set_distribution(previous)
            return
    yield 1  # torch: one device per process (several GPUs per trial need torch.distributed: not supported)
