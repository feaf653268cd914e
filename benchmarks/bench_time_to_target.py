"""Time to target: how soon each tool finds a model with val_accuracy >= target on the cnn space.

    python benchmarks/bench_time_to_target.py --seeds 5 --budget 120 --target 0.975

Every tool gets the same space (spaces/cnn.yaml), data, model code and training loop
(`trainers.fit.train`), the same wall-clock budget and the same seeds, and runs in a fresh process:
the clock starts when the process is spawned, so Python start-up and the TensorFlow import count.
The best epoch counts. Tools: kerasweep's defaults on each engine (the CLI, as a user runs it), the
optuna engine with `--workers 2` (the whole of a 2-core machine), and hand-written peers: KerasTuner Hyperband and RandomSearch, Optuna TPE with and without a Hyperband
pruner, Ray Tune's defaults (random search, FIFO) and Ray Tune with OptunaSearch + ASHA.

Peers append one JSON line per epoch (time, value) to a file as they go, so a run killed at the budget
still counts; kerasweep's runs are read back from MLflow (each epoch's metric timestamp).
Reports per tool the median time to target over the seeds (a seed that never reaches it counts as
never), the median best value at the budget, trials started, and seconds to the first epoch.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_results  # noqa: E402

KERASWEEP = {  # each tool's flags after `kerasweep sweep cnn`
    "kerasweep optuna": ["--engine", "optuna"], "kerasweep optuna --workers 2": ["--engine", "optuna", "--workers", "2"],
    "kerasweep ray": ["--engine", "ray"], "kerasweep keras-tuner": ["--engine", "keras-tuner"],
}
PEERS = ["KerasTuner Hyperband", "KerasTuner RandomSearch", "Optuna TPE + Hyperband pruner", "Optuna TPE",
         "Ray Tune defaults", "Ray Tune OptunaSearch + ASHA"]
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", "RAY_DEDUP_LOGS": "0", "RAY_AUTH_MODE": "token"}


# --- the peers, as users write them (run in a child process: --child NAME) --------------------------
def _space() -> Any:
    from kerasweep.search.space import load_space

    return load_space(ROOT / "spaces" / "cnn.yaml")


def _train(values: dict[str, Any], seed: int, log: Path, callbacks: list[Any], epochs: int | None = None,
           initial_epoch: int = 0) -> float:
    """One trial on the shared trainer; appends each epoch's value to the log; returns the best value."""
    import keras

    from kerasweep.search.trial import resolve_values
    from kerasweep.trainers.fit import TrainSpec, train

    space = _space()

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            with open(log, "a") as f:
                f.write(json.dumps({"t": time.time(), "value": float((logs or {}).get("val_accuracy", 0.0))}) + "\n")

    spec = TrainSpec(model=space.model, data=space.data, params=resolve_values(space, values),
                     epochs=epochs or space.budget.epochs, seed=seed)
    result = train(spec, callbacks=[Record(), *callbacks])
    return result.best_value


def _started(log: Path) -> None:
    with open(log, "a") as f:
        f.write(json.dumps({"t": time.time(), "trial": True}) + "\n")


def keras_tuner_peer(name: str, seed: int, log: Path, folder: Path) -> None:
    """KerasTuner as its users write it: build() returns a compiled model, KerasTuner fits it (so
    Hyperband's later rounds start from the earlier round's weights)."""
    import keras
    import keras_tuner as kt

    from kerasweep.search.engines.keras_tuner import hyperparameters, sampled_values
    from kerasweep.search.trial import resolve_values
    from kerasweep.trainers.data import load_arrays, make_pipeline
    from kerasweep.trainers.fit import TRAINING_DEFAULTS, make_optimizer
    from kerasweep.trainers.models import build

    space = _space()
    data = load_arrays(space.data, space.validation_split, seed)

    def values_of(hp: Any) -> dict[str, Any]:
        return {**TRAINING_DEFAULTS, **resolve_values(space, sampled_values(space, hp.values))}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            with open(log, "a") as f:
                f.write(json.dumps({"t": time.time(), "value": float((logs or {}).get("val_accuracy", 0.0))}) + "\n")

    class Peer(kt.HyperModel):
        def build(self, hp: Any) -> Any:
            values = values_of(hp)
            model = build(space.model, values, data.input_shape, data.n_classes)
            model.compile(optimizer=make_optimizer(values), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            return model

        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            _started(log)
            batch = int(values_of(hp)["batch_size"])
            stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=int(values_of(hp)["patience"]))
            return model.fit(make_pipeline(data.scaled()[0], data.y_train, batch, shuffle=True, seed=seed),
                             validation_data=make_pipeline(data.scaled()[1], data.y_val, batch, shuffle=False),
                             epochs=kwargs["epochs"], initial_epoch=kwargs.get("initial_epoch", 0), verbose=0,
                             callbacks=[*kwargs.get("callbacks", []), Record(), stop])

    common = {"hypermodel": Peer(), "objective": kt.Objective("val_accuracy", "max"), "seed": seed,
              "hyperparameters": hyperparameters(space), "directory": str(folder), "project_name": "peer",
              "overwrite": True}
    if name == "KerasTuner Hyperband":
        tuner = kt.Hyperband(max_epochs=space.budget.epochs, factor=3, hyperband_iterations=100, **common)
    else:
        tuner = kt.RandomSearch(max_trials=10_000, **common)
    tuner.search(epochs=space.budget.epochs, verbose=0)


def optuna_peer(name: str, seed: int, log: Path) -> None:
    import keras
    import optuna

    from kerasweep.search.engines._optuna_space import suggest

    space = _space()
    pruned = "pruner" in name

    class Report(keras.callbacks.Callback):
        def __init__(self, trial: optuna.Trial) -> None:
            super().__init__()
            self.trial = trial

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.trial.report(float((logs or {})["val_accuracy"]), epoch)
            if self.trial.should_prune():
                self.model.stop_training = True
                self.trial.set_user_attr("pruned", True)

    def objective(trial: optuna.Trial) -> float:
        _started(log)
        best = _train(suggest(trial, space), seed, log, [Report(trial)] if pruned else [])
        if trial.user_attrs.get("pruned"):
            raise optuna.TrialPruned
        return best

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(max_resource=space.budget.epochs)
                                if pruned else optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=10_000)


def ray_peer(name: str, seed: int, log: Path, folder: Path, deadline: float) -> None:
    import ray
    from ray import tune

    space = _space()

    def trainable(config: dict[str, Any]) -> None:
        import keras

        from kerasweep.search.quiet import import_keras_quietly

        import_keras_quietly()

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                tune.report({"val_accuracy": float((logs or {})["val_accuracy"]), "epoch": epoch + 1})

        _started(log)
        values = {k: v for k, v in config.items() if space.is_active(k, config)}
        _train(values, seed, log, [Report()])

    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), **QUIET}})
    if name == "Ray Tune defaults":
        param_space = {name: _ray_domain(p) for name, p in space.params.items()}
        tune_config = tune.TuneConfig(num_samples=10_000, time_budget_s=deadline - time.time())
    else:
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch

        param_space = None
        tune_config = tune.TuneConfig(
            num_samples=10_000, time_budget_s=deadline - time.time(),
            search_alg=OptunaSearch(space=functools.partial(_define_by_run, space=space), seed=seed,
                                    metric="val_accuracy", mode="max"),
            scheduler=ASHAScheduler(time_attr="epoch", max_t=space.budget.epochs, grace_period=1,
                                    metric="val_accuracy", mode="max"))
    tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), param_space=param_space, tune_config=tune_config,
                       run_config=tune.RunConfig(storage_path=str(folder), verbose=0))
    tuner.fit()  # Tune stops at the deadline and ray.shutdown() takes its daemons down with it
    ray.shutdown()


def _define_by_run(trial: Any, space: Any) -> None:
    """OptunaSearch's define-by-run space (a module-level function: Tune pickles its searcher)."""
    from kerasweep.search.engines._optuna_space import suggest

    suggest(trial, space)


def _ray_domain(param: Any) -> Any:
    from ray import tune

    from kerasweep.search.space import CategoricalParam, FloatParam

    if isinstance(param, CategoricalParam):
        return tune.choice(param.choices)
    if isinstance(param, FloatParam):
        return tune.loguniform(param.low, param.high) if param.log else tune.uniform(param.low, param.high)
    return tune.randint(param.low, param.high + 1)


def child(name: str, seed: int, log: Path, folder: Path, deadline: float) -> None:
    from kerasweep.search.quiet import import_keras_quietly, silence

    silence()
    import_keras_quietly()
    if name.startswith("KerasTuner"):
        keras_tuner_peer(name, seed, log, folder)
    elif name.startswith("Optuna"):
        optuna_peer(name, seed, log)
    else:
        ray_peer(name, seed, log, folder, deadline)


# --- the parent: spawn, time, kill at the budget, read back ------------------------------------------
def _spawn(command: list[str], budget: float, grace: float = 0.0) -> float:
    """Run a command for at most `budget` (+ `grace`) seconds, then kill its process group; returns its
    spawn time. A child given `--deadline` may use the grace to shut down cleanly (Ray)."""
    spawned = time.time()
    command = [c.replace("{deadline}", str(spawned + budget)) for c in command]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **QUIET}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=budget + grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return spawned


def run_peer(name: str, seed: int, budget: float, folder: Path) -> tuple[float, list[dict]]:
    log = folder / "log.jsonl"
    spawned = _spawn([sys.executable, __file__, "--child", name, "--seed", str(seed), "--log", str(log),
                      "--folder", str(folder), "--deadline", "{deadline}"], budget,
                     grace=30.0 if name.startswith("Ray") else 0.0)
    lines = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return spawned, lines


def run_kerasweep(flags: list[str], seed: int, budget: float, folder: Path) -> tuple[float, list[dict]]:
    """`kerasweep sweep cnn FLAGS` with its defaults, as a user types it; epochs read back from MLflow."""
    from mlflow import MlflowClient

    from kerasweep.search.tracking import tracking_uri_for

    store = folder / "store"
    spawned = _spawn([str(Path(sys.executable).with_name("kerasweep")), "sweep", "cnn", *flags,
                      "--seed", str(seed), "--store", str(store)], budget)
    client = MlflowClient(tracking_uri_for(store))
    experiment = client.get_experiment_by_name("cnn")
    lines: list[dict] = []
    if experiment is not None:
        runs = client.search_runs([experiment.experiment_id], "tags.`kerasweep.role` = 'trial'", max_results=10_000)
        for run in runs:
            lines.append({"t": run.info.start_time / 1000, "trial": True})
            lines += [{"t": m.timestamp / 1000, "value": m.value}
                      for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
    return spawned, lines


def summarise(spawned: float, lines: list[dict], budget: float, target: float) -> dict[str, Any]:
    epochs = sorted((line["t"] - spawned, line["value"]) for line in lines if "value" in line)
    epochs = [(t, v) for t, v in epochs if t <= budget]
    reached = next((t for t, v in epochs if v >= target), None)
    best, curve = 0.0, []
    for t, v in epochs:
        best = max(best, v)
        curve.append((round(t, 2), best))
    return {"time_to_target_s": reached, "best": best, "trials": sum(1 for line in lines if "trial" in line),
            "first_epoch_s": epochs[0][0] if epochs else None, "curve": curve}


def _median_time(times: list[float | None]) -> float | None:
    """Median where 'never' sorts last: None when half or more of the seeds never got there."""
    ordered = sorted(times, key=lambda t: float("inf") if t is None else t)
    half = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[half]
    a, b = ordered[half - 1], ordered[half]
    return None if a is None or b is None else (a + b) / 2


def plot(results: dict[str, list[dict]], target: float, path: Path) -> None:
    """Best value so far over time, one colour per tool, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6))
    for index, (tool, runs) in enumerate(results.items()):
        colour = f"C{index % 10}"
        for seed_index, run in enumerate(runs):
            if run["curve"]:
                times, values = zip(*run["curve"])
                ax.step(times, values, where="post", color=colour, alpha=0.6,
                        label=tool if seed_index == 0 else None)
    ax.axhline(target, color="black", linestyle="--", linewidth=1, label=f"target {target}")
    ax.set(xlabel="seconds since the command started", ylabel="best val_accuracy so far", ylim=(0.8, 1.0),
           title="Time to target on the cnn space (digits), one line per seed")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=120.0, help="wall-clock seconds per tool and seed")
    parser.add_argument("--target", type=float, default=0.975)
    parser.add_argument("--tools", default="all", help="comma-separated subset of the tool names")
    parser.add_argument("--store", type=Path, default=Path(os.environ.get("KERASWEEP_STORE", "runs")))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seed, args.log, args.folder, args.deadline)
        return

    tools = [*KERASWEEP, *PEERS] if args.tools == "all" else [t.strip() for t in args.tools.split(",")]
    results: dict[str, list[dict]] = {tool: [] for tool in tools}
    for seed in range(args.seeds):
        for tool in tools:
            print(f"seed {seed}: {tool} ...", flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                runner = run_kerasweep if tool in KERASWEEP else run_peer
                spawned, lines = runner(KERASWEEP.get(tool, tool), seed, args.budget, Path(tmp))
            results[tool].append({"seed": seed, **summarise(spawned, lines, args.budget, args.target)})

    rows, summary = [], {}
    for tool, runs in results.items():
        median = _median_time([r["time_to_target_s"] for r in runs])
        firsts = [r["first_epoch_s"] for r in runs if r["first_epoch_s"] is not None]
        summary[tool] = {
            "median_time_to_target_s": median,
            "times_to_target_s": [r["time_to_target_s"] for r in runs],
            "median_best": statistics.median(r["best"] for r in runs),
            "median_trials": statistics.median(r["trials"] for r in runs),
            "median_first_epoch_s": statistics.median(firsts) if firsts else None,
        }
        s = summary[tool]
        rows.append([tool, "never" if median is None else f"{median:.1f}",
                     " ".join("-" if t is None else f"{t:.0f}" for t in s["times_to_target_s"]),
                     f"{s['median_best']:.4f}", f"{s['median_trials']:g}",
                     "-" if s["median_first_epoch_s"] is None else f"{s['median_first_epoch_s']:.1f}"])
    print_table(f"Time to val_accuracy >= {args.target} on cnn/digits, {args.seeds} seeds, {args.budget:g} s budget",
                ["tool", "median s", "per seed s", "median best", "trials", "first epoch s"], rows)
    out = write_results(args.store, "time_to_target", {"target": args.target, "budget_s": args.budget,
                                                       "seeds": args.seeds, "summary": summary, "runs": results})
    png = out.with_suffix(".png")
    plot(results, args.target, png)
    print(f"results written to {out} and {png}")


if __name__ == "__main__":
    main()
