"""Search quality where search matters: the best model found for the compute spent, on real learning curves.

    python benchmarks/bench_search_quality.py --tasks 3945,7593 --seeds 10 --budgets 10,30,100 --json out.json

Each runner searches the LCBench space (7 hyperparameters of a funnel MLP, 1 to 52 epochs; `benchmarks/
lcbench.py`) for a task with a budget counted in epochs (`--budgets 10` = ten full 52-epoch runs). A
trial's training is the surrogate's curve reported epoch by epoch through the runner's own hooks, so each
library's sampler, scheduler and trial loop decide (kerasweep's is its optuna engine's `work` loop on a real
Optuna storage, MLflow off, as `bench_bookkeeping.py` runs it). The runners (`benchmarks/search_runners.py`):

- `kerasweep`: what `kerasweep sweep` does with no search flags (optuna engine, its default sampler and pruner);
- `kerasweep-median`, `kerasweep-successive-halving`, `kerasweep-random-hyperband`: its other pruners and the
  random sampler; `kerasweep-4-workers`: the default with `--workers 4` (4 worker loops on one storage);
- `optuna-tpe-hyperband`: the hand-written Optuna loop a user would write (TPESampler, HyperbandPruner);
- `random`: random search, no pruning;
- `ray-asha-optuna` and `ray-asha-optuna-4-concurrent`: Ray Tune's ASHA with its OptunaSearch, 1 and 4 trials
  at once;
- `keras-tuner-hyperband`: KerasTuner's Hyperband tuner;
- `dehb` and `smac3-hyperband`: DEHB and SMAC3's multi-fidelity facade, where they are installed (a runner
  whose library is missing is named as not run, in the output and the JSON).

Reported per (runner, task, seed, budget): the incumbent (best validation accuracy reported so far), the
trials run and the epochs spent; per task the normalised regret `(y_best - y) / (y_best - y_median)` against
5,000 random configurations at 52 epochs; a table of median regret per runner and budget, the win/loss count
per task against the Optuna peer (a Wilcoxon signed-rank test across seeds, p < 0.05), the same test pooled
over every (task, seed) pair (against the peer, and of each parallel runner against its one-worker twin:
the test of seed noise), and a PNG of regret against budget. `--merge A.json,B.json` reports on runs made
side by side in several processes (as `make bench` does) instead of measuring.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import lcbench  # noqa: E402
from benchmarks.common import print_table, write_results  # noqa: E402
from benchmarks.search_runners import NEEDS, PEER, RUNNERS, WORKERS, Ledger  # noqa: E402

def could_not_run(runners: list[str]) -> dict[str, str]:
    """The runners whose library is not installed here, with the reason."""
    import importlib.util

    return {r: f"{NEEDS[r]} is not installed (pip install '.[bench]')" for r in runners
            if r in NEEDS and importlib.util.find_spec(NEEDS[r]) is None}


def measure(runners: list[str], tasks: list[int], seeds: int, budgets: list[int]) -> list[dict[str, Any]]:
    """One search per (runner, task, seed) at the largest budget; the smaller budgets read its anytime curve
    (no runner's choices depend on the total budget)."""
    records = []
    for runner in runners:
        for task in tasks:
            for seed in range(seeds):
                ledger = Ledger(max(budgets) * lcbench.EPOCHS)
                started = time.perf_counter()
                with tempfile.TemporaryDirectory() as folder:
                    RUNNERS[runner](task, seed, ledger, Path(folder))
                seconds = time.perf_counter() - started
                for budget in budgets:
                    epochs = budget * lcbench.EPOCHS
                    incumbent, trials = ledger.at(epochs)
                    records.append({"runner": runner, "task": task, "seed": seed, "budget": budget,
                                    "incumbent": incumbent, "regret": lcbench.regret(task, incumbent),
                                    "trials": trials, "epochs_spent": min(ledger.spent, epochs),
                                    "search_s": round(seconds, 2)})
                print(f"{runner} task {task} seed {seed}: best {ledger.best:.4f} in {ledger.trials} trials, "
                      f"{seconds:.1f} s", file=sys.stderr)
    return records


def _regrets(records: list[dict[str, Any]], runner: str, budget: int) -> dict[tuple[int, int], float]:
    return {(x["task"], x["seed"]): x["regret"] for x in records if x["runner"] == runner and x["budget"] == budget}


def summarise(records: list[dict[str, Any]], runners: list[str], budgets: list[int]) -> dict[str, Any]:
    """Median regret per runner and budget (None where a runner was not measured at a budget), and per
    task the win/loss count against the Optuna peer over the seeds both ran."""
    from scipy.stats import wilcoxon

    median = {r: {b: float(np.median(list(found.values()))) if (found := _regrets(records, r, b)) else None
                  for b in budgets} for r in runners}
    versus: dict[str, dict[str, dict[str, int]]] = {}
    for runner in (r for r in runners if r != PEER and PEER in runners):
        versus[runner] = {}
        for budget in budgets:
            ours_all, theirs_all = _regrets(records, runner, budget), _regrets(records, PEER, budget)
            if not ours_all:
                continue
            tally = {"win": 0, "loss": 0, "tie": 0, "median_lower": 0}
            for task in sorted({task for task, _ in ours_all}):
                pairs = sorted(key for key in ours_all if key[0] == task and key in theirs_all)
                ours, theirs = (np.array([found[key] for key in pairs]) for found in (ours_all, theirs_all))
                differs = len(ours) > 1 and not np.allclose(ours, theirs)
                p = wilcoxon(ours, theirs).pvalue if differs else 1.0
                better = np.median(ours) < np.median(theirs)
                tally["tie" if p >= 0.05 else "win" if better else "loss"] += 1
                tally["median_lower"] += int(better)
            versus[runner][str(budget)] = tally
    return {"median_regret": median, "against_peer": versus, "pooled": pooled(records, runners, budgets)}


#: the one-worker twin of each parallel runner: the comparison the issue's parallel-workers goal asks for
TWINS = {f"kerasweep-{WORKERS}-workers": "kerasweep", f"ray-asha-optuna-{WORKERS}-concurrent": "ray-asha-optuna"}


def pooled(records: list[dict[str, Any]], runners: list[str], budgets: list[int]) -> list[dict[str, Any]]:
    """Every runner against the Optuna peer, and each parallel runner against its one-worker twin, over all
    (task, seed) pairs both ran: the Wilcoxon signed-rank p, and which side its rank sums favour (`verdict`:
    lower or higher regret beyond seed noise, or within it). With 3 seeds no single task can reach p < 0.05;
    pooled over 20 tasks it can, so this is the test of seed noise."""
    from scipy.stats import rankdata, wilcoxon

    pairs = [(r, PEER) for r in runners if r != PEER and PEER in runners]
    pairs += [(r, twin) for r, twin in TWINS.items() if r in runners and twin in runners]
    found = []
    for runner, other in pairs:
        for budget in budgets:
            ours_all, theirs_all = _regrets(records, runner, budget), _regrets(records, other, budget)
            keys = sorted(set(ours_all) & set(theirs_all))
            if len(keys) < 6:
                continue
            differences = np.array([ours_all[k] - theirs_all[k] for k in keys])
            moved = differences[differences != 0]
            p = float(wilcoxon(moved).pvalue) if len(moved) else 1.0
            ranks = rankdata(np.abs(moved))
            favours_ours = ranks[moved < 0].sum() > ranks[moved > 0].sum()  # the side the test's statistic leans to
            found.append({"runner": runner, "against": other, "budget": budget, "pairs": len(keys), "p": p,
                          "lower": int((differences < 0).sum()), "higher": int((differences > 0).sum()),
                          "median_difference": float(np.median(differences)),
                          "verdict": "within seed noise" if p >= 0.05 else "lower" if favours_ours else "higher"})
    return found


def plot(records: list[dict[str, Any]], runners: list[str], budgets: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for runner in runners:
        measured = [b for b in budgets if _regrets(records, runner, b)]
        ax.plot(measured, [np.median(list(_regrets(records, runner, b).values())) for b in measured], marker="o",
                label=runner)
    ax.set(xscale="log", xlabel="budget (full 52-epoch runs)", ylabel="median normalised regret",
           title="LCBench: regret against compute")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _parse(args: argparse.Namespace) -> tuple[list[str], list[int], list[int]]:
    problem = lcbench.available()
    if problem:
        raise SystemExit(f"bench_search_quality: {problem}")
    runners = [r for r in args.runners.split(",") if r]
    unknown = [r for r in runners if r not in RUNNERS]
    if unknown:
        raise SystemExit(f"--runners: unknown {', '.join(unknown)}; expected some of {', '.join(RUNNERS)}")
    return runners, [int(t) for t in args.tasks.split(",")], sorted(int(b) for b in args.budgets.split(","))


def merged(files: list[Path]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The records and not-run runners of several runs' JSON files; a (runner, task, seed, budget) twice is
    an error (the same search measured twice)."""
    records, not_run, seen = [], {}, set()
    for file in files:
        document = json.loads(file.read_text())
        not_run.update(document.get("not_run", {}))
        for record in document["results"]:
            key = (record["runner"], record["task"], record["seed"], record["budget"])
            if key in seen:
                raise SystemExit(f"--merge: {file}: {key} is already in an earlier file")
            seen.add(key)
            records.append(record)
    return records, not_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(map(str, lcbench.DEVELOPMENT_TASKS)))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budgets", default="10,30,100")
    parser.add_argument("--runners", default=",".join(RUNNERS))
    parser.add_argument("--json", type=Path, help="also write the records here")
    parser.add_argument("--store", type=Path, default=Path("runs"))
    parser.add_argument("--merge", help="measure nothing: report on the records of these JSON files (FILE,FILE), "
                        "runs made side by side in several processes")
    args = parser.parse_args()
    if args.merge:
        records, not_run = merged([Path(f) for f in args.merge.split(",")])
        runners = list(dict.fromkeys(x["runner"] for x in records))
        tasks, budgets = sorted({x["task"] for x in records}), sorted({x["budget"] for x in records})
    else:
        runners, tasks, budgets = _parse(args)
        not_run = could_not_run(runners)
        for runner, reason in not_run.items():
            print(f"{runner}: not run, {reason}", file=sys.stderr)
        runners = [r for r in runners if r not in not_run]
        records = measure(runners, tasks, args.seeds, budgets)
    summary = summarise(records, runners, budgets)
    seconds = {r: float(np.median([x["search_s"] for x in records if x["runner"] == r])) for r in runners}
    print_table("Median normalised regret on LCBench (0: best of 5,000 random configs, 1: their median)",
                ["runner", *(f"budget {b}" for b in budgets), "searches", "s per search"],
                [[r, *("-" if summary["median_regret"][r][b] is None else f"{summary['median_regret'][r][b]:.3f}"
                       for b in budgets), str(len({(x["task"], x["seed"]) for x in records if x["runner"] == r})),
                  f"{seconds[r]:.1f}"] for r in runners])
    for runner, tallies in summary["against_peer"].items():
        print(f"{runner} against {PEER}, per task (win/loss/tie, Wilcoxon p < 0.05; median lower): " + ", ".join(
            f"budget {b}: {t['win']}/{t['loss']}/{t['tie']}; {t['median_lower']}" for b, t in tallies.items()))
    for row in summary["pooled"]:
        print(f"{row['runner']} against {row['against']}, budget {row['budget']}, {row['pairs']} (task, seed) pairs: "
              f"lower in {row['lower']}, higher in {row['higher']}, median difference {row['median_difference']:+.3f}, "
              f"Wilcoxon p = {row['p']:.3f}: regret {row['verdict']}")
    seeds = max(len({x["seed"] for x in records if x["runner"] == r}) for r in runners)
    payload = {"tasks": tasks, "seeds": seeds, "budgets": budgets, "runners": runners, "not_run": not_run,
               "results": records, "seconds_per_search": seconds, **summary}
    out = write_results(args.store, "search_quality", payload)
    plot(records, runners, budgets, out.with_suffix(".png"))
    if args.json:
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    print(f"Wrote {out} and {out.with_suffix('.png')}" + (f" and {args.json}" if args.json else ""))


if __name__ == "__main__":
    main()
