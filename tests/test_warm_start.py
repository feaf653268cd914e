"""`--warm-start SWEEP` and `--enqueue FILE`: a new sweep's first trials from what is already known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerasweep.search.engines import ENGINES
from kerasweep.search.errors import UserInputError
from kerasweep.search.space import Space
from tests.conftest import mlflow_client, run_cli, sweep_runs, write_space

SPACE = """
    name: warm
    model: mlp
    data: iris
    budget: {trials: 3, epochs: 2}
    search: {sampler: random, pruner: none, seed: 3}
    params:
      learning_rate: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
      optimizer: {type: categorical, choices: [adam, sgd]}
      momentum: {type: float, low: 0.5, high: 0.9, when: {optimizer: sgd}}
      units: {type: int, low: 4, high: 32, step: 4}
    fixed: {layers: 1}
"""


def _space() -> Space:
    import yaml

    return Space.model_validate(yaml.safe_load(SPACE.replace("\n    ", "\n")))


def test_values_outside_the_new_space_are_named() -> None:
    from kerasweep.search.warm_start import fit_point

    space = _space()
    # Rule: a point keeps the searched, active values; fixed names are the space's; inactive ones drop
    assert fit_point(space, {"learning_rate": 0.01, "optimizer": "adam", "momentum": 0.7, "layers": 1}, "f") == {
        "learning_rate": 0.01, "optimizer": "adam"}
    for values, message in [
        ({"learning_rate": 0.5}, r"f: learning_rate: 0.5 is outside the space \(expected a number in \[0.001, 0.1\]\)"),
        ({"optimizer": "rmsprop"}, r"f: optimizer: 'rmsprop' is outside the space \(expected one of \['adam', 'sgd'\]\)"),
        ({"units": 4.5}, r"units: 4.5 is outside the space \(expected a whole number"),
        ({"dropout": 0.1}, r"f: 'dropout' not searched by space 'warm'; it searches learning_rate, optimizer"),
    ]:
        with pytest.raises(UserInputError, match=message):
            fit_point(space, values, "f")


def test_an_enqueue_file_is_an_exported_config_or_a_list_of_param_sets(tmp_path: Path) -> None:
    from kerasweep.search.warm_start import from_file

    listed = tmp_path / "points.yaml"
    listed.write_text("- {learning_rate: 0.01, optimizer: sgd, momentum: 0.8}\n- {units: 8}\n")
    assert from_file(_space(), listed).points == ({"learning_rate": 0.01, "optimizer": "sgd", "momentum": 0.8},
                                                  {"units": 8})
    exported = tmp_path / "best.yaml"
    exported.write_text("model: mlp\ndata: iris\nparams: {learning_rate: 0.02, optimizer: adam, layers: 1}\n")
    assert from_file(_space(), exported).points == ({"learning_rate": 0.02, "optimizer": "adam"},)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {units: 7}\n")
    # Rule: the error names the file, the entry, the name and the value
    with pytest.raises(UserInputError, match=r"bad.yaml: \[0\]: units: 7 is outside"):
        from_file(_space(), bad)
    bad.write_text("learning_rate: 0.01\n")
    with pytest.raises(UserInputError, match=r"bad.yaml: expected an exported config \(with params:\) or a YAML list"):
        from_file(_space(), bad)


def test_a_warm_started_sweep_begins_with_the_old_best_and_runs_its_own_budget(tmp_path: Path) -> None:
    import os

    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config, run_sweep
    from kerasweep.search.warm_start import warm_start

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    space, store = load_space(write_space(tmp_path, SPACE)), tmp_path / "store"
    old = run_sweep(make_config(space, name="monday", store=store))
    enqueued = tmp_path / "points.yaml"
    enqueued.write_text("- {learning_rate: 0.05, optimizer: sgd, momentum: 0.6, units: 12}\n")
    started = warm_start(space, store, enqueued, "monday")
    new = run_sweep(make_config(space, name="tuesday", store=store, first_points=started.points,
                                started_from=started.source, evidence=started.evidence))
    searched = {k: v for k, v in old.best.params.items() if k in space.params}
    by_number = {t.number: t for t in new.trials}
    # Rule: the old sweep's best config is the first trial, then the enqueued values, in that order
    assert {k: v for k, v in by_number[0].params.items() if k in space.params} == searched
    assert {k: by_number[1].params[k] for k in ("learning_rate", "optimizer", "momentum", "units")} == {
        "learning_rate": 0.05, "optimizer": "sgd", "momentum": 0.6, "units": 12}
    # Rule: the new sweep counts only its own trials, and its parent run says where it started from
    assert new.done == 3
    parents, _ = sweep_runs(mlflow_client(store), "warm", "tuesday")
    tags = parents[0].data.tags
    assert tags["kerasweep.warm_start"] == "monday" and tags["kerasweep.warm_start_trial"] == str(old.best.number)
    assert tags["kerasweep.enqueue"] == str(enqueued)
    # Rule: the old sweep's complete trials are the sampler's evidence, counted on the parent run
    assert len(started.evidence) == sum(t.state.value == "complete" for t in old.trials) == 3
    assert tags["kerasweep.warm_start_evidence"] == "3"


def _evidence_space() -> Space:
    # a user builder's own param (`x`): a space of one float, checked as its sampler sees it
    return Space.model_validate({"name": "e", "model": "examples.custom_model:build", "data": "iris",
                                 "budget": {"trials": 20}, "params": {"x": {"type": "float", "low": 0.0, "high": 1.0}}})


def test_evidence_steers_the_sampler_from_its_first_trial_and_stays_out_of_the_study() -> None:
    import optuna

    from kerasweep.search.engines._optuna_space import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = _evidence_space()
    evidence = tuple(({"x": x}, (-(x - 0.9) ** 2,)) for x in [i / 29 for i in range(30)])
    asked = {}
    for name, given in (("with", evidence), ("without", ())):
        study = optuna.create_study(direction="maximize", sampler=make_sampler(space, evidence=given))
        xs = []
        for _ in range(5):
            trial = study.ask()
            xs.append(trial.suggest_float("x", 0.0, 1.0))
            study.tell(trial, -(xs[-1] - 0.9) ** 2)
        asked[name] = sum(xs) / len(xs)
        # Rule: the evidence is the sampler's only: the study holds its own trials, numbered from 0
        assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    # Rule: with another sweep's trials as evidence, TPE samples near their best from its first trial (without,
    # its first trials are random start-up trials)
    assert asked["with"] > 0.75 and asked["with"] > asked["without"] + 0.1, asked


def test_the_ray_searcher_gets_the_evidence_too() -> None:
    from kerasweep.search.engines._optuna_space import WithEvidence
    from kerasweep.search.engines.ray import make_search

    search = make_search(_evidence_space(), 1, evidence=(({"x": 0.5}, (1.0,)),))
    searcher = search
    while hasattr(searcher, "searcher"):  # inside Ray's ConcurrencyLimiter and kerasweep's budget
        searcher = searcher.searcher
    # Rule: ray samples through the same Optuna sampler, evidence included
    assert isinstance(searcher._sampler, WithEvidence) and len(searcher._sampler.prior) == 1


def test_warm_start_flags_are_checked_before_any_work(tmp_path: Path) -> None:
    from kerasweep.search.cli import main

    space = write_space(tmp_path, SPACE)
    store = tmp_path / "store"
    for args, said in [(["--warm-start", "ghost"], "sweep 'ghost' not found"),
                       (["--warm-start", "warm"], "--warm-start: 'warm' is this sweep"),
                       (["--enqueue", str(tmp_path / "none.yaml")], "none.yaml")]:
        answer = CliRunner().invoke(main, ["sweep", str(space), "--store", str(store), *args])
        # Rule: exit 2, one line, nothing written
        assert answer.exit_code == 2 and said in " ".join(answer.output.split()), answer.output
        assert not store.exists()


@pytest.mark.slow  # a sweep and a warm-started one per engine, about 30 s each
@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "optuna"])
def test_warm_start_on_every_engine(tmp_path: Path, engine: str) -> None:
    space, store = write_space(tmp_path, SPACE), tmp_path / "store"
    first = run_cli("sweep", str(space), "--engine", engine, "--name", "monday", "--store", str(store))
    assert first.returncode == 0, first.stderr
    second = run_cli("sweep", str(space), "--engine", engine, "--name", "tuesday", "--warm-start", "monday",
                     "--store", str(store))
    assert second.returncode == 0, second.stderr
    client = mlflow_client(store)
    old_parent, old_runs = sweep_runs(client, "warm", "monday")
    best = old_parent[0].data.tags["kerasweep.best_trial"]
    _, new_runs = sweep_runs(client, "warm", "tuesday")
    old_best = next(r for r in old_runs if int(r.data.tags["kerasweep.trial"]) == int(best))
    new_first = next(r for r in new_runs if r.data.tags["kerasweep.trial"] == "0")
    searched = ("learning_rate", "optimizer", "momentum", "units")
    old_values, new_values = (json.loads(r.data.tags["kerasweep.params"]) for r in (old_best, new_first))
    # Rule: on every engine the new sweep's first trial trains the old sweep's best values
    assert {k: new_values.get(k) for k in searched} == {k: old_values.get(k) for k in searched}
    assert sum(r.data.tags["kerasweep.state"] in ("complete", "pruned") for r in new_runs) == 3


def test_evidence_is_the_old_trials_this_space_could_have_sampled() -> None:
    from kerasweep.search.results import TrialResult, TrialState
    from kerasweep.search.warm_start import _evidence

    space = _space()
    trials = [TrialResult(0, TrialState.COMPLETE, 0.9, {"learning_rate": 0.01, "optimizer": "adam", "units": 8}),
              TrialResult(1, TrialState.COMPLETE, 0.8, {"learning_rate": 0.5, "optimizer": "adam", "units": 8}),
              TrialResult(2, TrialState.PRUNED, 0.3, {"learning_rate": 0.01, "optimizer": "adam", "units": 8}),
              TrialResult(3, TrialState.COMPLETE, 0.7, {"learning_rate": 0.01, "optimizer": "sgd", "units": 8})]
    # Rule: complete trials inside this space with every active value known; a range left out (0.5), a
    # pruned trial and one lacking an active value (momentum under sgd) are not evidence
    assert _evidence(space, space, trials) == (({"learning_rate": 0.01, "optimizer": "adam", "units": 8}, (0.9,)),)
    other = space.model_copy(update={"objective": space.objective.model_copy(update={"metric": "val_loss",
                                                                                      "direction": "minimize"})})
    # Rule: another objective's values teach nothing about this one
    assert _evidence(space, other, trials) == ()
