"""The searches `bench_search_quality.py` compares: kerasweep's own and the ones a user would pick instead.

Every runner spends one `Ledger` of surrogate epochs through its library's own hooks (Optuna's report and
prune, Ray Tune's report and scheduler, KerasTuner's `run_trial`, DEHB's and SMAC3's ask and tell), so each
library's sampler, scheduler and bookkeeping decide what the epochs are spent on. Runners that train each
fidelity from scratch (DEHB, SMAC3) pay every epoch again; those that continue a trial (Optuna's pruners,
ASHA, KerasTuner's Hyperband, which loads the earlier bracket's weights) pay only the new epochs.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import lcbench  # noqa: E402

PEER = "optuna-tpe-hyperband"
#: the simulated concurrency of the parallel runners (their epochs interleave as 4 workers' would)
WORKERS = 4
#: seconds one epoch takes in the parallel runners: long enough that the 4 workers' epochs interleave
EPOCH_S = 0.0005


class Spent(BaseException):
    """Raised inside a library's loop when the budget is spent: a BaseException, so no library's
    `except Exception` around a trial mistakes it for a failed trial."""


class Ledger:
    """Epochs spent against the budget, and the incumbent after each one (the anytime curve); thread-safe,
    for the parallel runners."""

    def __init__(self, budget_epochs: int) -> None:
        self.budget, self.spent, self.best, self.trials = budget_epochs, 0, 0.0, 0
        self.curve: list[float] = []  # the incumbent after each epoch spent
        self.started: list[int] = []  # the trials started by each epoch spent
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Ray Tune pickles its callbacks into the experiment's state file; the live ledger stays here
        return {key: value for key, value in self.__dict__.items() if key != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    @property
    def done(self) -> bool:
        return self.spent >= self.budget

    def start(self) -> None:
        with self._lock:
            self.trials += 1

    def epoch(self, accuracy: float) -> None:
        """Count one epoch; epochs past the budget (parallel trials still running) are not counted."""
        with self._lock:
            if self.spent >= self.budget:
                return
            self.spent += 1
            self.best = max(self.best, accuracy)
            self.curve.append(self.best)
            self.started.append(self.trials)

    def at(self, epochs: int) -> tuple[float, int]:
        """The incumbent once `epochs` were spent, and the trials started by then."""
        index = min(epochs, len(self.curve)) - 1
        return self.curve[index], self.started[index]


def train_on_surrogate(task: int, ledger: Ledger, config: dict[str, Any], report: Callable[[int, float], bool],
                       first: int = 1, last: int = lcbench.EPOCHS, epoch_s: float = 0.0) -> tuple[float, int, bool]:
    """Report epochs `first`..`last` of a configuration's curve until `report` prunes it or the budget is
    spent; returns (last accuracy, last epoch, pruned)."""
    ledger.start()
    accuracy, epoch = 0.0, first - 1
    for epoch, accuracy in enumerate(lcbench.curve(task, config)[first - 1:last], start=first):
        if epoch_s:
            time.sleep(epoch_s)
        ledger.epoch(float(accuracy))
        if report(epoch, float(accuracy)):
            return float(accuracy), epoch, True
        if ledger.done:
            break
    return float(accuracy), epoch, False


def _kerasweep(task: int, seed: int, ledger: Ledger, folder: Path, workers: int = 1, **search: Any) -> None:
    """The optuna engine's own worker loop (`workers` of them, as threads on one storage), its sampler and
    pruner as `search` says (the default when empty); training is the surrogate, MLflow off."""
    import kerasweep.search.engines.optuna as engine
    from benchmarks.bench_bookkeeping import NoTracker
    from kerasweep.search.lifecycle import TrialLife
    from kerasweep.search.results import TrialState
    from kerasweep.search.space import Space
    from kerasweep.search.sweep import make_config
    from kerasweep.search.trial import TrialOutcome

    space = Space.model_validate({"name": "lcbench", "model": "benchmarks.lcbench:build", "data": "iris",
                                  "budget": {"trials": 1_000_000, "epochs": lcbench.EPOCHS},
                                  "search": {"seed": seed, **search}, "params": lcbench.space_params()})

    def surrogate_trial(space: Any, values: dict[str, Any], hooks: Any = (), **_: Any) -> Any:
        def report(epoch: int, accuracy: float) -> bool:
            metrics = {"accuracy": accuracy, "val_accuracy": accuracy, "loss": 1 - accuracy, "val_loss": 1 - accuracy}
            return any([hook(epoch, metrics) for hook in hooks])  # every hook sees every epoch

        accuracy, epochs, pruned = train_on_surrogate(task, ledger, values, report,
                                                      epoch_s=EPOCH_S if workers > 1 else 0.0)
        return TrialOutcome(TrialState.PRUNED if pruned else TrialState.COMPLETE, value=accuracy,
                            best_epoch=epochs - 1, epochs=epochs)

    # a journal file: the engine's own storage kind, without SQLite's cost per reported epoch
    config = make_config(space, name=f"t{task}-s{seed}", store=folder / "store", check_data_files=False,
                         storage=str(folder / "optuna.journal"), workers=workers)
    config.store.root.mkdir(parents=True, exist_ok=True)
    kept = engine.TrialLife, engine.run_trial, engine.out_of_time
    engine.TrialLife = lambda sweep: TrialLife(sweep, NoTracker())  # MLflow off: the search is measured
    engine.run_trial = surrogate_trial
    engine.out_of_time = lambda sweep: ledger.done  # the budget is epochs, not trials
    try:
        threads = [threading.Thread(target=engine.work, args=(config, worker, lambda result: None, worker == 0))
                   for worker in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        engine.TrialLife, engine.run_trial, engine.out_of_time = kept


def _optuna_loop(task: int, seed: int, ledger: Ledger, sampler: Any, pruner: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # a study name of its own: Optuna's Hyperband puts a trial in a bracket by a hash of the study's name and
    # the trial's number, so a generated name would make every run of the same seed differ
    study = optuna.create_study(study_name=f"t{task}-s{seed}", direction="maximize", sampler=sampler, pruner=pruner)

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

    _optuna_loop(task, seed, ledger, optuna.samplers.TPESampler(seed=seed),
                 optuna.pruners.HyperbandPruner(min_resource=1, max_resource=lcbench.EPOCHS, reduction_factor=3))


def run_random(task: int, seed: int, ledger: Ledger, folder: Path) -> None:
    import optuna

    _optuna_loop(task, seed, ledger, optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner())


def _ray_asha(task: int, seed: int, ledger: Ledger, folder: Path, concurrent: int = 1) -> None:
    """Ray Tune's ASHA scheduler with its OptunaSearch searcher (TPE), as Ray's docs pair them; the
    driver counts the epochs as results arrive and stops every trial once the budget is spent."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    space = {name: (tune.lograndint if log else tune.randint)(int(low), int(high) + 1) if whole else
             (tune.loguniform if log else tune.uniform)(low, high)
             for name, (low, high, log, whole) in lcbench.SPACE.items()}

    def trainable(config: dict[str, Any]) -> None:
        from benchmarks import lcbench as surrogate

        for epoch, accuracy in enumerate(surrogate.curve(task, config), start=1):
            if concurrent > 1:
                time.sleep(EPOCH_S)
            tune.report({"val_accuracy": float(accuracy), "epoch": epoch})

    class Count(tune.Callback):
        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            ledger.start()

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            ledger.epoch(result["val_accuracy"])

    class OutOfBudget(tune.Stopper):
        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return ledger.done

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 2 / concurrent}), param_space=space,
        tune_config=tune.TuneConfig(
            metric="val_accuracy", mode="max", num_samples=-1, max_concurrent_trials=concurrent,
            search_alg=OptunaSearch(seed=seed), reuse_actors=True,
            scheduler=ASHAScheduler(max_t=lcbench.EPOCHS, grace_period=1, reduction_factor=3)),
        run_config=tune.RunConfig(storage_path=str(folder / "ray"), stop=OutOfBudget(), callbacks=[Count()],
                                  verbose=0, checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    tuner.fit()


def run_keras_tuner(task: int, seed: int, ledger: Ledger, folder: Path) -> None:
    """KerasTuner's Hyperband (max 52 epochs, factor 3): its oracle picks, its `run_trial` trains; a trial
    of a later bracket continues from the epochs its parent ran, as Hyperband loads the parent's weights."""
    import keras_tuner as kt

    class Declares(kt.HyperModel):
        def build(self, hp: kt.HyperParameters) -> None:
            for name, (low, high, log, whole) in lcbench.SPACE.items():
                sampling = "log" if log else "linear"
                if whole:
                    hp.Int(name, int(low), int(high), sampling=sampling)
                else:
                    hp.Float(name, low, high, sampling=sampling)

    class OnSurrogate(kt.Hyperband):
        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            values = trial.hyperparameters.values
            if ledger.done:
                raise Spent
            config = {name: values[name] for name in lcbench.SPACE}
            seen: list[float] = []
            train_on_surrogate(task, ledger, config, lambda epoch, accuracy: seen.append(accuracy) and False,
                               first=values.get("tuner/initial_epoch", 0) + 1,
                               last=values.get("tuner/epochs", lcbench.EPOCHS))
            return {"val_accuracy": max(seen, default=0.0)}  # as KerasTuner scores a fit: its best epoch

        def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
            pass  # nothing trained: no weights to save

    tuner = OnSurrogate(Declares(), objective="val_accuracy", max_epochs=lcbench.EPOCHS, factor=3,
                        hyperband_iterations=10_000, seed=seed, directory=str(folder), project_name="kt",
                        overwrite=True)
    try:
        tuner.search(verbose=0)
    except Spent:
        pass


def _configspace(seed: int) -> Any:
    from ConfigSpace import ConfigurationSpace, Float, Integer

    space = ConfigurationSpace(seed=seed)
    space.add([Integer(name, (int(low), int(high)), log=log) if whole else Float(name, (low, high), log=log)
               for name, (low, high, log, whole) in lcbench.SPACE.items()])
    return space


def _from_scratch(task: int, ledger: Ledger, config: dict[str, Any], fidelity: float) -> float:
    """A fidelity trained from scratch: epochs 1..fidelity, every one paid; the accuracy at the last."""
    accuracy, _, _ = train_on_surrogate(task, ledger, config, lambda epoch, accuracy: False,
                                        last=max(1, min(lcbench.EPOCHS, round(fidelity))))
    return accuracy


def run_dehb(task: int, seed: int, ledger: Ledger, folder: Path) -> None:
    """DEHB (differential evolution over Hyperband's brackets, min 1, max 52 epochs, eta 3), ask and tell."""
    from dehb import DEHB

    optimizer = DEHB(cs=_configspace(seed), dimensions=len(lcbench.SPACE), min_fidelity=1,
                     max_fidelity=lcbench.EPOCHS, eta=3, n_workers=1, seed=seed, output_path=str(folder / "dehb"),
                     log_level="ERROR", save_freq=None)
    while not ledger.done:
        job = optimizer.ask()
        accuracy = _from_scratch(task, ledger, dict(job["config"]), job["fidelity"])
        optimizer.tell(job, {"fitness": 1 - accuracy, "cost": job["fidelity"]})


def run_smac(task: int, seed: int, ledger: Ledger, folder: Path) -> None:
    """SMAC3's multi-fidelity facade (a random forest over Hyperband's brackets, min 1, max 52, eta 3)."""
    from smac import MultiFidelityFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue

    scenario = Scenario(_configspace(seed), deterministic=True, n_trials=1_000_000, min_budget=1,
                        max_budget=lcbench.EPOCHS, seed=seed, output_directory=folder / "smac")
    optimizer = MultiFidelityFacade(scenario, lambda config, seed=0, budget=1: 0.0, overwrite=True, logging_level=40,
                                    intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=3))
    while not ledger.done:
        info = optimizer.ask()
        accuracy = _from_scratch(task, ledger, dict(info.config), info.budget)
        optimizer.tell(info, TrialValue(cost=1 - accuracy))


Runner = Callable[[int, int, Ledger, Path], None]
RUNNERS: dict[str, Runner] = {
    "kerasweep": lambda *a: _kerasweep(*a),  # the default search, whatever it is
    PEER: run_optuna_peer,
    "random": run_random,
    "kerasweep-median": lambda *a: _kerasweep(*a, pruner="median"),
    "kerasweep-successive-halving": lambda *a: _kerasweep(*a, pruner="successive_halving"),
    "kerasweep-random-hyperband": lambda *a: _kerasweep(*a, sampler="random"),
    f"kerasweep-{WORKERS}-workers": lambda *a: _kerasweep(*a, workers=WORKERS),
    "ray-asha-optuna": lambda *a: _ray_asha(*a),
    f"ray-asha-optuna-{WORKERS}-concurrent": lambda *a: _ray_asha(*a, concurrent=WORKERS),
    "keras-tuner-hyperband": run_keras_tuner,
    "dehb": run_dehb,
    "smac3-hyperband": run_smac,
}
#: the library each runner needs beyond kerasweep's own, for the line that says a runner could not run
NEEDS = {"dehb": "dehb", "smac3-hyperband": "smac"}
