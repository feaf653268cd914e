"""Bookkeeping at scale: what the Optuna engine costs per trial when training costs nothing.

    python benchmarks/bench_bookkeeping.py --trials 1000

The kerasweep Optuna engine runs N trials whose training is replaced by a stub that reports three
epochs at once, so what is timed is the engine's own work per trial: ask, suggest, tell, the owner and
run-id attributes, the heartbeat, and (with MLflow on) the nested run with its params, three epochs of
metrics, state tags and its end. Storages: SQLite, a journal file and PostgreSQL (a throw-away server
with fsync off, when Debian's postgresql package is installed), each with MLflow logging on and off,
next to the peer users would write: `study.optimize` on SQLite with optuna-integration's
MLflowCallback. The sampler is random, so sampling cost (TPE grows with the trials) is not in it.

Reports trials per second over the whole sweep and the cost of the last 100 trials over the first 100
(how the cost grows as the sweep grows), from Optuna's own start and end times. Prints a table,
writes JSON and a PNG of per-trial cost over the trial index under the store.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_results  # noqa: E402

SPACE = """name: book
model: mlp
data: iris
budget: {{trials: {trials}, epochs: 3}}
search: {{sampler: random, pruner: none}}
params:
  learning_rate: {{type: float, low: 1.0e-4, high: 1.0e-1, log: true}}
  units: {{type: int, low: 8, high: 64}}
"""


def stub_run_trial(space: Any, values: dict[str, Any], hooks: Any = (), **_: Any) -> Any:
    """Training that costs nothing: three epochs of made-up metrics through the engine's hooks."""
    from kerasweep.search.results import TrialState
    from kerasweep.search.trial import TrialOutcome

    value = 0.0
    for epoch in (1, 2, 3):
        value = 0.5 + 0.1 * epoch * float(values["learning_rate"])
        metrics = {"loss": 1.0 / epoch, "accuracy": value, "val_loss": 1.0 / epoch, "val_accuracy": value}
        for hook in hooks:
            hook(epoch, metrics)
    return TrialOutcome(TrialState.COMPLETE, value=value, best_epoch=2, epochs=3)


class NoTracker:
    """MLflow logging off: the tracker's methods, doing nothing."""

    tracking_uri = "none"

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: [] if name == "trial_runs" else "no-run"

    def is_running(self, run_id: str) -> bool:
        return False


def kerasweep_optuna(trials: int, storage: str | None, mlflow: bool, folder: Path,
                     name: str) -> tuple[list[tuple[float, float]], int]:
    """Run the engine's worker loop with the stub trainer; returns each trial's (start, end) times and how
    many trial runs MLflow holds (0 with MLflow off)."""
    import kerasweep.search.engines.optuna as engine

    kept = engine.TrialLife, engine.run_trial
    try:
        return _kerasweep_optuna(trials, storage, mlflow, folder, name)
    finally:  # the next runner gets the real lifecycle back (MLflow on)
        engine.TrialLife, engine.run_trial = kept


def _kerasweep_optuna(trials: int, storage: str | None, mlflow: bool, folder: Path,
                      name: str) -> tuple[list[tuple[float, float]], int]:
    import optuna

    import kerasweep.search.engines.optuna as engine
    from kerasweep.search.lifecycle import TrialLife, tracker_of
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config

    space_file = folder / "book.yaml"
    space_file.write_text(SPACE.format(trials=trials))
    config = make_config(load_space(space_file), name=name, store=folder / "store", storage=storage)
    config.store.root.mkdir(parents=True, exist_ok=True)
    if mlflow:
        tracker = tracker_of(config)
        parent = tracker.start_sweep("book", name, None, {"engine": "optuna"})
        config = dataclasses.replace(config, parent_run_id=parent, tracking_uri=tracker.tracking_uri)
    else:
        engine.TrialLife = lambda sweep: TrialLife(sweep, NoTracker())  # type: ignore[assignment, misc]
    engine.run_trial = stub_run_trial
    engine.work(config, 0, lambda result: None)
    study = optuna.load_study(study_name=name, storage=engine.make_storage(config))
    logged = len(tracker.trial_runs(config.parent_run_id)) if mlflow else 0
    return [(t.datetime_start.timestamp(), t.datetime_complete.timestamp())
            for t in study.get_trials(deepcopy=False) if t.datetime_complete], logged


def peer_optuna_mlflow_callback(trials: int, folder: Path) -> list[tuple[float, float]]:
    """The peer: study.optimize on SQLite with optuna-integration's MLflowCallback (a flat run per trial)."""
    import optuna
    from optuna_integration.mlflow import MLflowCallback

    from kerasweep.search.tracking import tracking_uri_for

    callback = MLflowCallback(tracking_uri=tracking_uri_for(folder / "store"), metric_name="val_accuracy")
    study = optuna.create_study(storage=f"sqlite:///{folder / 'peer.db'}", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        rate = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        trial.suggest_int("units", 8, 64)
        return 0.5 + rate

    study.optimize(objective, n_trials=trials, callbacks=[callback])
    return [(t.datetime_start.timestamp(), t.datetime_complete.timestamp()) for t in study.get_trials(deepcopy=False)]


@contextlib.contextmanager
def storages(folder: Path) -> Iterator[dict[str, str | None]]:
    """The storages to compare; PostgreSQL only where Debian's server binaries are installed."""
    found: dict[str, str | None] = {"SQLite": None, "journal file": str(folder / "optuna.journal")}
    try:
        from tests.postgres_server import postgres_bin, throwaway_postgres
    except ImportError:
        postgres_bin = lambda: None  # noqa: E731 - a wheel install without the tests folder
    if postgres_bin() is None:
        print("PostgreSQL skipped: Debian's postgresql package is not installed")
        yield found
        return
    with throwaway_postgres() as url:
        yield {**found, "PostgreSQL": url}


def summarise(spans: list[tuple[float, float]]) -> dict[str, Any]:
    spans.sort()
    ends = [end for _, end in spans]
    costs = [b - a for a, b in zip([spans[0][0], *ends[:-1]], ends)]  # wall time each trial added
    head, tail = costs[:100], costs[-100:]
    return {"trials": len(spans), "trials_per_s": len(spans) / (ends[-1] - spans[0][0]),
            "first_100_ms": 1000 * sum(head) / len(head), "last_100_ms": 1000 * sum(tail) / len(tail),
            "growth": (sum(tail) / len(tail)) / (sum(head) / len(head)), "costs_ms": [1000 * c for c in costs]}


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6))
    for name, result in results.items():
        costs = result["costs_ms"]
        window = 25
        smooth = [sum(costs[max(0, i - window):i + 1]) / len(costs[max(0, i - window):i + 1]) for i in range(len(costs))]
        ax.plot(range(len(smooth)), smooth, label=name)
    ax.set(xlabel="trial index", ylabel="ms per trial (moving average of 25)", yscale="log",
           title="Bookkeeping cost per trial as the sweep grows (training stubbed out)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--store", type=Path, default=Path(os.environ.get("KERASWEEP_STORE", "runs")))
    args = parser.parse_args()
    from kerasweep.search.quiet import import_keras_quietly, silence

    silence()
    import_keras_quietly()  # the engine sets up TensorFlow's threads before its first trial
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp, storages(Path(tmp)) as found:
        for storage_name, storage in found.items():
            for mlflow in (True, False):
                name = f"kerasweep, {storage_name}{' + MLflow' if mlflow else ''}"
                print(f"running {name} ...", flush=True)
                with tempfile.TemporaryDirectory() as run_folder:
                    started = time.perf_counter()  # a new study name each: journal and PostgreSQL are shared
                    spans, logged = kerasweep_optuna(args.trials, storage, mlflow, Path(run_folder),
                                                     f"book-{len(results)}")
                    results[name] = {**summarise(spans), "mlflow_trial_runs": logged}
                    results[name]["total_s"] = time.perf_counter() - started
        name = "peer: Optuna, SQLite + MLflowCallback"
        print(f"running {name} ...", flush=True)
        with tempfile.TemporaryDirectory() as run_folder:
            started = time.perf_counter()
            results[name] = summarise(peer_optuna_mlflow_callback(args.trials, Path(run_folder)))
            results[name]["total_s"] = time.perf_counter() - started
    rows = [[name, f"{r['trials_per_s']:.1f}", f"{r['first_100_ms']:.1f}", f"{r['last_100_ms']:.1f}",
             f"{r['growth']:.2f}"] for name, r in results.items()]
    print_table(f"Bookkeeping: {args.trials} trials, training stubbed out",
                ["runner", "trials/s", "first 100 ms/trial", "last 100 ms/trial", "last/first"], rows)
    out = write_results(args.store, "bookkeeping", {"trials": args.trials, "results": results})
    png = out.with_suffix(".png")
    plot(results, png)
    print(f"results written to {out} and {png}")


if __name__ == "__main__":
    main()
