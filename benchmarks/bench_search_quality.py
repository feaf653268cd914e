"""Search quality where search matters: the best model found for the compute spent, on real learning curves.

    python benchmarks/bench_search_quality.py --tasks 3945,7593 --seeds 10 --budgets 10,30,100 --json out.json

Each runner searches the LCBench space (7 hyperparameters of a funnel MLP, 1 to 52 epochs; `benchmarks/
lcbench.py`) for a task with a budget counted in epochs (`--budgets 10` = ten full 52-epoch runs). A
trial's training is the surrogate's curve reported epoch by epoch through the runner's own hooks, so
kerasweep's sampler, pruner and trial loop decide (its engine's `work` loop on a real Optuna storage, MLflow
off, as `bench_bookkeeping.py` runs it). Runners:

- `kerasweep`: what `kerasweep sweep` does with no search flags (optuna engine, its default sampler and pruner);
- `optuna-tpe-hyperband`: the hand-written Optuna loop a user would write (TPESampler, HyperbandPruner);
- `random`: random search, no pruning.

Reported per (runner, task, seed, budget): the incumbent (best validation accuracy reported so far), the
trials run and the epochs spent; per task the normalised regret `(y_best - y) / (y_best - y_median)` against
5,000 random configurations at 52 epochs; a table of median regret per runner and budget, the win/loss count
per task against the Optuna peer (a Wilcoxon signed-rank test across seeds, p < 0.05), and a PNG of anytime
regret. Not yet among the runners: Ray Tune ASHA, KerasTuner Hyperband, DEHB, SMAC3 (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import lcbench  # noqa: E402
from benchmarks.common import print_table, write_results  # noqa: E402

PEER = "optuna-tpe-hyperband"


class Ledger:
    """Epochs spent against the budget, and the incumbent after each one (the anytime curve)."""

    def __init__(self, budget_epochs: int) -> None:
        self.budget, self.spent, self.best, self.trials = budget_epochs, 0, 0.0, 0
        self.curve: list[float] = []  # the incumbent after each epoch spent
        self.started: list[int] = []  # the trials started by each epoch spent

    @property
    def done(self) -> bool:
        return self.spent >= self.budget

    def epoch(self, accuracy: float) -> None:
        self.spent += 1
        self.best = max(self.best, accuracy)
        self.curve.append(self.best)
        self.started.append(self.trials)

    def at(self, epochs: int) -> tuple[float, int]:
        """The incumbent once `epochs` were spent, and the trials started by then."""
        index = min(epochs, len(self.curve)) - 1
        return self.curve[index], self.started[index]


def train_on_surrogate(task: int, ledger: Ledger, config: dict[str, Any],
                       report: Callable[[int, float], bool]) -> tuple[float, int, bool]:
    """Report a configuration's curve epoch by epoch until `report` prunes it or the budget is spent;
    returns (last accuracy, epochs, pruned)."""
    ledger.trials += 1
    accuracy, epoch = 0.0, 0
    for epoch, accuracy in enumerate(lcbench.curve(task, config), start=1):
        ledger.epoch(float(accuracy))
        if report(epoch, float(accuracy)):
            return float(accuracy), epoch, True
        if ledger.done:
            break
    return float(accuracy), epoch, False


def run_kerasweep(task: int, seed: int, ledger: Ledger, folder: Path) -> None:
    """The optuna engine's own worker loop with its default sampler and pruner; training is the surrogate."""
    import kerasweep.search.engines.optuna as engine
    from benchmarks.bench_bookkeeping import NoTracker
    from kerasweep.search.lifecycle import TrialLife
    from kerasweep.search.results import TrialState
    from kerasweep.search.space import Space
    from kerasweep.search.sweep import make_config
    from kerasweep.search.trial import TrialOutcome

    space = Space.model_validate({"name": "lcbench", "model": "benchmarks.lcbench:build", "data": "iris",
                                  "budget": {"trials": 1_000_000, "epochs": lcbench.EPOCHS},
                                  "search": {"seed": seed}, "params": lcbench.space_params()})

    def surrogate_trial(space: Any, values: dict[str, Any], hooks: Any = (), **_: Any) -> Any:
        def report(epoch: int, accuracy: float) -> bool:
            metrics = {"accuracy": accuracy, "val_accuracy": accuracy, "loss": 1 - accuracy, "val_loss": 1 - accuracy}
            return any([hook(epoch, metrics) for hook in hooks])  # every hook sees every epoch

        accuracy, epochs, pruned = train_on_surrogate(task, ledger, values, report)
        return TrialOutcome(TrialState.PRUNED if pruned else TrialState.COMPLETE, value=accuracy,
                            best_epoch=epochs - 1, epochs=epochs)

    # a journal file: the engine's own storage kind, without SQLite's cost per reported epoch
    config = make_config(space, name=f"t{task}-s{seed}", store=folder / "store", check_data_files=False,
                         storage=str(folder / "optuna.journal"))
    config.store.root.mkdir(parents=True, exist_ok=True)
    kept = engine.TrialLife, engine.run_trial, engine.out_of_time
    engine.TrialLife = lambda sweep: TrialLife(sweep, NoTracker())  # MLflow off: the search is measured
    engine.run_trial = surrogate_trial
    engine.out_of_time = lambda sweep: ledger.done  # the budget is epochs, not trials
    try:
        engine.work(config, 0, lambda result: None)
    finally:
        engine.TrialLife, engine.run_trial, engine.out_of_time = kept


def _optuna_loop(task: int, ledger: Ledger, sampler: Any, pruner: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)

    def objective(trial: optuna.Trial) -> float:
        config = {}
        for name, (low, high, log, whole) in lcbench.SPACE.items():
            config[name] = trial.suggest_int(name, int(low), int(high), log=log) if whole else \
                trial.suggest_float(name, low, high, log=log)

        def report(epoch: int, accuracy: float) -> bool:
            trial.report(accuracy, epoch)
            return trial.should_prune()

        accuracy, _, pruned = train_on_surrogate(task, ledger, config, report)
        if pruned:
            raise optuna.TrialPruned()
        return accuracy

    study.optimize(objective, callbacks=[lambda study, trial: study.stop() if ledger.done else None])


def run_optuna_peer(task: int, seed: int, ledger: Ledger, folder: Path) -> None:
    """What a user writes by hand: Optuna's TPE with its Hyperband pruner over the same epochs."""
    import optuna

    _optuna_loop(task, ledger, optuna.samplers.TPESampler(seed=seed),
                 optuna.pruners.HyperbandPruner(min_resource=1, max_resource=lcbench.EPOCHS, reduction_factor=3))


def run_random(task: int, seed: int, ledger: Ledger, folder: Path) -> None:
    import optuna

    _optuna_loop(task, ledger, optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner())


RUNNERS: dict[str, Callable[[int, int, Ledger, Path], None]] = {
    "kerasweep": run_kerasweep, PEER: run_optuna_peer, "random": run_random}


def measure(runners: list[str], tasks: list[int], seeds: int, budgets: list[int]) -> list[dict[str, Any]]:
    """One search per (runner, task, seed) at the largest budget; the smaller budgets read its anytime curve
    (no runner's choices depend on the total budget)."""
    records = []
    for runner in runners:
        for task in tasks:
            for seed in range(seeds):
                ledger = Ledger(max(budgets) * lcbench.EPOCHS)
                with tempfile.TemporaryDirectory() as folder:
                    RUNNERS[runner](task, seed, ledger, Path(folder))
                for budget in budgets:
                    epochs = budget * lcbench.EPOCHS
                    incumbent, trials = ledger.at(epochs)
                    records.append({"runner": runner, "task": task, "seed": seed, "budget": budget,
                                    "incumbent": incumbent, "regret": lcbench.regret(task, incumbent),
                                    "trials": trials, "epochs_spent": min(ledger.spent, epochs)})
                print(f"{runner} task {task} seed {seed}: best {ledger.best:.4f} in {ledger.trials} trials",
                      file=sys.stderr)
    return records


def summarise(records: list[dict[str, Any]], runners: list[str], budgets: list[int]) -> dict[str, Any]:
    """Median regret per runner and budget, and per task the win/loss count against the Optuna peer."""
    from scipy.stats import wilcoxon

    median = {r: {b: float(np.median([x["regret"] for x in records if x["runner"] == r and x["budget"] == b]))
                  for b in budgets} for r in runners}
    versus: dict[str, dict[str, dict[str, int]]] = {}
    for runner in (r for r in runners if r != PEER and PEER in runners):
        versus[runner] = {}
        for budget in budgets:
            tally = {"win": 0, "loss": 0, "tie": 0}
            for task in sorted({x["task"] for x in records}):
                ours, theirs = (np.array([x["regret"] for x in sorted(records, key=lambda x: x["seed"])
                                          if x["runner"] == who and x["task"] == task and x["budget"] == budget])
                                for who in (runner, PEER))
                differs = len(ours) > 1 and not np.allclose(ours, theirs)
                p = wilcoxon(ours, theirs).pvalue if differs else 1.0
                better = np.median(ours) < np.median(theirs)
                tally["tie" if p >= 0.05 else "win" if better else "loss"] += 1
            versus[runner][str(budget)] = tally
    return {"median_regret": median, "against_peer": versus}


def plot(records: list[dict[str, Any]], runners: list[str], budgets: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for runner in runners:
        ax.plot(budgets, [np.median([x["regret"] for x in records if x["runner"] == runner and x["budget"] == b])
                          for b in budgets], marker="o", label=runner)
    ax.set(xscale="log", xlabel="budget (full 52-epoch runs)", ylabel="median normalised regret",
           title="LCBench: regret against compute")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(map(str, lcbench.DEVELOPMENT_TASKS)))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budgets", default="10,30,100")
    parser.add_argument("--runners", default=",".join(RUNNERS))
    parser.add_argument("--json", type=Path, help="also write the records here")
    parser.add_argument("--store", type=Path, default=Path("runs"))
    args = parser.parse_args()
    problem = lcbench.available()
    if problem:
        raise SystemExit(f"bench_search_quality: {problem}")
    runners = [r for r in args.runners.split(",") if r]
    unknown = [r for r in runners if r not in RUNNERS]
    if unknown:
        raise SystemExit(f"--runners: unknown {', '.join(unknown)}; expected some of {', '.join(RUNNERS)}")
    tasks, budgets = [int(t) for t in args.tasks.split(",")], sorted(int(b) for b in args.budgets.split(","))
    records = measure(runners, tasks, args.seeds, budgets)
    summary = summarise(records, runners, budgets)
    print_table("Median normalised regret on LCBench (0: best of 5,000 random configs, 1: their median)",
                ["runner", *(f"budget {b}" for b in budgets)],
                [[r, *(f"{summary['median_regret'][r][b]:.3f}" for b in budgets)] for r in runners])
    for runner, tallies in summary["against_peer"].items():
        print(f"{runner} against {PEER}, per task (win/loss/tie, Wilcoxon p < 0.05): " + ", ".join(
            f"budget {b}: {t['win']}/{t['loss']}/{t['tie']}" for b, t in tallies.items()))
    payload = {"tasks": tasks, "seeds": args.seeds, "budgets": budgets, "runners": runners, "results": records,
               **summary}
    out = write_results(args.store, "search_quality", payload)
    plot(records, runners, budgets, out.with_suffix(".png"))
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    print(f"Wrote {out} and {out.with_suffix('.png')}" + (f" and {args.json}" if args.json else ""))


if __name__ == "__main__":
    main()
