"""Per-trial overhead, side by side in one run: the same fixed config trained N times by each runner.

    make bench                       # or: python benchmarks/bench_overhead.py --trials 10 --epochs 3

Runners: a bare Keras loop (build, compile, fit), the kerasweep Optuna engine (MLflow logging,
checkpoints and TensorBoard on), the kerasweep Ray engine, and a plain Ray Tune script (defaults, no
actor reuse). TensorFlow is imported once before timing starts. The cost per trial is the steady
state, measured the same way for every runner: from the second trial's start to the last one's end,
divided by N - 1. The first trial is reported on its own: on Ray it holds the worker's start-up and
TensorFlow import (3.6 s of a 5.1 s first trial, measured on 2026-11-27), which the in-process runners
paid before timing started; counted into the span, it made the Ray engine look 0.4 s a trial dearer
than it is. The rest of the start-up (MLflow store, Ray) and the end (plots) show in the total. Ray runs
one trial at a time (2 CPUs per trial on a 2-core machine) so every runner trains sequentially. Prints a
table and writes JSON and a PNG under the store.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_results  # noqa: E402
from kerasweep.search.quiet import import_keras_quietly, silence  # noqa: E402

RUNNERS = ("bare", "optuna", "ray", "ray-tune")
CONFIG = {"learning_rate": 1e-3, "optimizer": "adam", "batch_size": 64, "filters": 32, "dropout": 0.2}


def _timing(total: float, starts: list[float], last_end: float) -> dict:
    """The runner's total, its first trial, and the steady cost per trial after it (see the module doc)."""
    starts = sorted(starts)
    return {"total_s": total, "first_trial_s": starts[1] - starts[0],
            "per_trial_s": (last_end - starts[1]) / (len(starts) - 1)}


def bare_keras(trials: int, epochs: int) -> dict:
    """The floor: what a hand-written loop costs per trial."""
    import keras

    from kerasweep.trainers.data import load_arrays, make_pipeline
    from kerasweep.trainers.fit import configure_runtime, make_optimizer
    from kerasweep.trainers.models import build

    configure_runtime()
    data = load_arrays("digits", 0.2, 0)
    started, starts = time.perf_counter(), []
    for _ in range(trials):
        starts.append(time.perf_counter())
        keras.utils.set_random_seed(0)
        model = build("cnn", CONFIG, data.input_shape, data.n_classes)
        model.compile(optimizer=make_optimizer({**CONFIG, "momentum": 0.0}), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(make_pipeline(data.scaled()[0], data.y_train, 64, True), epochs=epochs, verbose=0,
                  validation_data=make_pipeline(data.scaled()[1], data.y_val, 64, False))
    ended = time.perf_counter()
    return _timing(ended - started, starts, ended)


def _space_file(folder: Path, trials: int, epochs: int) -> Path:
    params = "\n".join(f"  {k}: {{type: categorical, choices: [{v}]}}" for k, v in CONFIG.items())
    path = folder / "bench.yaml"
    path.write_text(f"name: bench\nmodel: cnn\ndata: digits\nbudget: {{trials: {trials}, epochs: {epochs}}}\n"
                    f"search: {{sampler: random, pruner: none}}\nparams:\n{params}\nfixed: {{patience: 100}}\n")
    return path


def kerasweep_engine(engine: str, trials: int, epochs: int, folder: Path) -> dict:
    """A kerasweep sweep of a one-point space: every trial trains the same config."""
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep

    space = load_space(_space_file(folder, trials, epochs))
    # one trial at a time on every runner: all the cores per Ray trial, one optuna worker even where GPUs are seen
    extra = {"cpus_per_trial": float(os.cpu_count() or 1)} if engine == "ray" else {"workers": 1}
    config = make_config(space, name=f"bench-{engine}", store=folder / f"store-{engine}", engine=engine, **extra)
    started = time.perf_counter()
    result = run_sweep(config)
    total = time.perf_counter() - started
    from kerasweep.search.lifecycle import tracker_of

    tracker = tracker_of(config)
    runs = tracker.trial_runs(tracker.find_sweep_run("bench", config.name))
    assert result.done == trials, result.counts
    return _timing(total, [r.info.start_time / 1000 for r in runs], max(r.info.end_time for r in runs) / 1000)


def plain_ray_tune(trials: int, epochs: int, folder: Path) -> dict:
    """What users write by hand: a function trainable, Tune's defaults (a fresh worker per trial)."""
    import ray
    from ray import tune

    def trainable(config: dict) -> None:
        from kerasweep.search.quiet import import_keras_quietly as quiet_tf

        quiet_tf()

        from kerasweep.trainers.data import load_arrays, make_pipeline
        from kerasweep.trainers.fit import make_optimizer
        from kerasweep.trainers.models import build

        data = load_arrays("digits", 0.2, 0)
        model = build("cnn", config, data.input_shape, data.n_classes)
        model.compile(optimizer=make_optimizer({**config, "momentum": 0.0}), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        for epoch in range(epochs):
            history = model.fit(make_pipeline(data.scaled()[0], data.y_train, 64, True), epochs=1, verbose=0,
                                validation_data=make_pipeline(data.scaled()[1], data.y_val, 64, False)).history
            tune.report({"val_accuracy": history["val_accuracy"][-1], "epoch": epoch + 1})

    started = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": float(os.cpu_count() or 1)}),
        param_space=CONFIG,
        tune_config=tune.TuneConfig(num_samples=trials),
        run_config=tune.RunConfig(storage_path=str(folder / "plain-ray"), verbose=0),
    )
    grid = tuner.fit()
    total = time.perf_counter() - started
    ray.shutdown()
    starts = [r.metrics["timestamp"] - r.metrics["time_total_s"] for r in grid]
    ends = [r.metrics["timestamp"] for r in grid]
    assert all(r.metrics["training_iteration"] == epochs for r in grid)
    return _timing(total, starts, max(ends))


def plot(results: dict[str, dict], path: Path) -> None:
    """Seconds per trial after the first, per runner, against the bare loop and the 1.05x goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.6 * len(names)))
    ax.barh(names, [results[n]["per_trial_s"] for n in names], color="#4c72b0")
    floor = results["bare Keras loop"]["per_trial_s"]
    ax.axvline(floor * 1.05, color="black", linestyle="--", label="goal: 1.05x the bare loop")
    for index, name in enumerate(names):
        ax.text(results[name]["per_trial_s"], index, f" {results[name]['ratio']:.2f}x", va="center")
    ax.set(xlabel="seconds per trial after the first")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="at least 2: the first trial is reported apart")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--store", type=Path, default=Path(os.environ.get("KERASWEEP_STORE", "runs")))
    parser.add_argument("--runners", default=",".join(RUNNERS),
                        help=f"comma-separated, from {', '.join(RUNNERS)} (bare is always run: it is the floor)")
    args = parser.parse_args()
    chosen = {"bare", *args.runners.split(",")}
    if chosen - set(RUNNERS):
        parser.error(f"--runners: unknown {', '.join(sorted(chosen - set(RUNNERS)))}; expected {', '.join(RUNNERS)}")
    if args.trials < 2:
        parser.error("--trials: at least 2 (the steady cost per trial is measured after the first)")
    silence()
    import_keras_quietly()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runners = {
            "bare": ("bare Keras loop", lambda: bare_keras(args.trials, args.epochs)),
            "optuna": ("kerasweep optuna engine", lambda: kerasweep_engine("optuna", args.trials, args.epochs, folder)),
            "ray": ("kerasweep ray engine", lambda: kerasweep_engine("ray", args.trials, args.epochs, folder)),
            "ray-tune": ("plain Ray Tune (defaults)", lambda: plain_ray_tune(args.trials, args.epochs, folder)),
        }
        for name, runner in (runners[key] for key in RUNNERS if key in chosen):
            print(f"running {name} ...", flush=True)
            results[name] = runner()
    floor = results["bare Keras loop"]["per_trial_s"]
    rows = []
    for name, r in results.items():
        r["ratio"] = r["per_trial_s"] / floor
        r["extra_s_per_trial"] = r["per_trial_s"] - floor
        rows.append([name, f"{r['total_s']:.1f}", f"{r['first_trial_s']:.2f}", f"{r['per_trial_s']:.2f}",
                     f"{r['extra_s_per_trial']:+.2f}", f"{r['ratio']:.2f}"])
    import keras

    from kerasweep.trainers.backend import visible_gpus

    gpus, backend = visible_gpus(), keras.backend.backend()  # visible_gpus asks nvidia-smi: once
    where = f"{os.cpu_count()} CPUs" + (f", GPU(s) {','.join(gpus)}" if gpus else "")
    print_table(f"Per-trial overhead: {args.trials} trials x {args.epochs} epochs, cnn on digits, {where}, "
                f"Keras on {backend}",
                ["runner", "total s", "first trial s", "s per trial after it", "extra s per trial", "x bare Keras"],
                rows)
    out = write_results(args.store, "overhead", {"trials": args.trials, "epochs": args.epochs,
                                                 "backend": backend, "results": results})
    png = out.with_suffix(".png")
    plot(results, png)
    print(f"results written to {out} and {png}")


if __name__ == "__main__":
    main()
