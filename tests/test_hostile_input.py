"""Hostile and damaged input fails fast with one line: YAML bombs, unsampleable values, damaged stores,
tampered exports, names and paths that would escape or break the store (issue 17). Library calls with
real files and real stores; the CLI only where the CLI is the subject."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerasweep.search.errors import UserInputError
from kerasweep.search.lifecycle import tracker_of
from tests.conftest import run_cli, write_space

MLP = "name: m\nmodel: mlp\ndata: iris\nparams:\n  units: {type: int, low: 8, high: 16}\n"


def _load(folder: Path, text: str):
    from kerasweep.search.space import load_space

    return load_space(write_space(folder, text))


def _problems(folder: Path, text: str) -> str:
    with pytest.raises(UserInputError) as caught:
        _load(folder, text)
    return str(caught.value)


# --- YAML read with limits ---------------------------------------------------------------------
BOMB = "".join(f"{n}: &{n} [{', '.join([f'*{p}' if p else 'x'] * 9)}]\n"
               for n, p in zip("abcdefg", ["", *"abcdef"]))


@pytest.mark.parametrize("where", ["choices", "fixed"])
def test_an_alias_bomb_fails_at_once_with_one_line(tmp_path: Path, where: str) -> None:
    text = f"name: m\nmodel: mlp\ndata: iris\n{BOMB}params:\n  units: {{type: int, low: 8, high: 16}}\n"
    text += "  activation: {type: categorical, choices: *g}\n" if where == "choices" else "fixed: {layers: *g}\n"
    started = time.monotonic()
    message = _problems(tmp_path, text)
    # Rule: a few hundred bytes that expand to millions of values are refused before anything walks them
    assert time.monotonic() - started < 2
    assert "expands to" in message and "at most 100000" in message and len(message.splitlines()) == 1


def test_a_huge_file_and_too_many_params_are_refused(tmp_path: Path) -> None:
    from kerasweep.search.space import MAX_PARAMS

    big = tmp_path / "big.yaml"
    big.write_text(MLP + "# " + "x" * 1_100_000 + "\n")
    from kerasweep.search.space import load_space

    with pytest.raises(UserInputError, match="at most 1000000"):
        load_space(big)
    many = "".join(f"  p{i}: {{type: int, low: 1, high: 2}}\n" for i in range(MAX_PARAMS + 1))
    message = _problems(tmp_path, f"name: m\nmodel: examples.none:build\ndata: iris\nparams:\n{many}")
    # Rule: a space of thousands of params fails at once instead of suggesting for minutes
    assert f"at most {MAX_PARAMS} items" in message


# --- values that cannot be sampled or that the model cannot read ----------------------------------
@pytest.mark.parametrize("param, fragment", [
    ("learning_rate: {type: float, low: .nan, high: 0.1}", "params.learning_rate.low: Input should be a finite number"),
    ("learning_rate: {type: float, low: 0.001, high: .inf}", "params.learning_rate.high: Input should be a finite number"),
    ("dropout: {type: float, low: 0.0, high: 0.5, step: .nan}", "params.dropout.step: Input should be a finite number"),
    ("dropout: {type: float, low: 0.0, high: 0.5, default: .inf}", "params.dropout.default: Input should be a finite"),
    ("dropout: {type: categorical, choices: [0.1, .nan]}", "params.dropout.choices.1: expected true/false"),
    ("batch_size: {type: categorical, choices: [big, 32]}", "params.batch_size.choices: batch_size is a whole number, got 'big'"),
    ("batch_size: {type: categorical, choices: [true, 1, 32]}", "batch_size is a whole number, got True"),
    ("batch_size: {type: categorical, choices: [0, 32]}", "batch_size must be >= 1, got 0"),
    ("batch_size: {type: float, low: 8, high: 64}", "params.batch_size.type: batch_size is a whole number; use type: int"),
    ("dropout: {type: float, low: 0.0, high: 1.5}", "params.dropout.high: dropout must lie in [0, 1), got 1.5"),
    ("batch_norm: {type: int, low: 0, high: 1}", "params.batch_norm.type: batch_norm takes true or false"),
])
def test_values_that_cannot_be_sampled_or_read_fail_validation(tmp_path: Path, param: str, fragment: str) -> None:
    message = _problems(tmp_path, f"name: m\nmodel: mlp\ndata: iris\nparams:\n  {param}\n")
    # Rule: every bound, step, default and choice is finite and of the type and range its reader takes
    assert fragment in message, message


@pytest.mark.parametrize("fixed, fragment", [
    ("{optimizer: [adam]}", "fixed.optimizer: optimizer is a name (text), got ['adam']"),
    ("{layers: -1}", "fixed.layers: layers must be >= 0, got -1"),
    ("{batch_size: 12.5}", "fixed.batch_size: batch_size is a whole number, got 12.5"),
    ("{mixed_precision: maybe}", "fixed.mixed_precision: mixed_precision is true or false"),
])
def test_fixed_values_are_checked_against_what_the_model_reads(tmp_path: Path, fixed: str, fragment: str) -> None:
    message = _problems(tmp_path, MLP + f"fixed: {fixed}\n")
    assert fragment in message, message


def test_every_known_param_has_a_value_rule() -> None:
    from kerasweep.trainers import catalog

    known = set(catalog.TRAINING_PARAMS).union(*catalog.MODEL_PARAMS.values())
    # Rule: no param the models read escapes the type check; named values are checked against their list
    assert known == set(catalog.VALUE_RULES)
    assert all(catalog.VALUE_RULES[name].kind == "name" for name in catalog.NAMED_VALUES)


def test_a_user_builder_still_gets_the_training_loops_rules(tmp_path: Path) -> None:
    from kerasweep.search.space import check_value

    # Rule: batch size, optimizer, ... are read by the training loop whatever the builder; its own params are its own
    assert check_value("fixed.batch_size", "batch_size", "big", "pkg.mod:build")
    assert not check_value("fixed.width", "width", "anything", "pkg.mod:build")


def test_keras_tuner_refuses_mixed_types_for_a_builders_own_param() -> None:
    from kerasweep.search.engines import keras_tuner
    from kerasweep.search.space import Space

    space = Space.model_validate({"name": "m", "model": "examples.custom_model:build", "data": "iris",
                                  "params": {"width": {"type": "categorical", "choices": [8, "16"]}}})
    # Rule: KerasTuner's Choice takes one type; a builder's own param is checked by the engine that needs it
    assert any("one type" in problem for problem in keras_tuner.check(space, keras_tuner.Options()))


def test_error_lines_keep_their_brackets() -> None:
    from kerasweep.search.cli import main

    result = CliRunner().invoke(main, ["sweep", str(Path(__file__).parent / "nonexistent[low, high].yaml")])
    # Rule: text in square brackets inside an error is printed, not swallowed as console markup
    assert result.exit_code == 2 and "[low, high]" in result.output, result.output


# --- names and stores ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, fragment", [("nl\n", "not a valid sweep name"), ("a" * 300, "at most 100 characters"),
                                            (".hidden", "not a valid sweep name")])
def test_names_that_would_break_the_store_are_refused(name: str, fragment: str) -> None:
    from kerasweep.search.sweep import check_name

    with pytest.raises(UserInputError, match=fragment):
        check_name(name)


def test_store_paths_that_cannot_work_are_refused_before_anything_is_created(tmp_path: Path, monkeypatch) -> None:
    from kerasweep.search.store import check_store

    (tmp_path / "file").write_text("x")
    cases = {
        tmp_path / "file" / "runs": "lies under",  # a store under a file
        tmp_path / "a?b" / "runs": "'?'",  # would end the SQLite URL: the database would land elsewhere
        tmp_path / "a#b": "'#'",
    }
    for store, fragment in cases.items():
        with pytest.raises(UserInputError, match=fragment):
            check_store(store)
    # Rule: nothing was created by the checks
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # a read-only disk (root ignores chmod)
    with pytest.raises(UserInputError, match="not writable"):
        check_store(tmp_path / "runs")


def test_damaged_databases_are_one_line_naming_the_file(tmp_path: Path) -> None:
    from kerasweep.search.store import check_store
    from kerasweep.search.tracking import Tracker

    store = tmp_path / "store"
    store.mkdir()
    (store / "optuna.db").write_text("garbage")
    with pytest.raises(UserInputError, match="optuna.db: not an SQLite database"):
        check_store(store)
    (store / "optuna.db").unlink()
    Tracker.for_store(store)  # a real store, then cut short as a full disk or a bad copy would
    (store / "mlflow.db").write_bytes((store / "mlflow.db").read_bytes()[:5000])
    with pytest.raises(UserInputError, match="mlflow.db: the MLflow tracking store cannot be read"):
        Tracker.for_store(store)


def test_a_truncated_sweep_record_is_one_line(tmp_path: Path) -> None:
    from kerasweep.search.sweep import load_config

    (tmp_path / "sweeps").mkdir(parents=True)
    (tmp_path / "sweeps" / "s.json").write_text('{"name": "s", "engi')
    with pytest.raises(UserInputError, match=r"s.json: not a readable sweep record"):
        load_config("s", tmp_path)


def test_an_object_array_npz_is_a_data_error(tmp_path: Path) -> None:
    from kerasweep.trainers.data import DataError, load_arrays

    path = tmp_path / "obj.npz"
    np.savez(path, x=np.zeros((4, 2)), y=np.array([{"a": 1}, None, 1, 2], dtype=object))
    with pytest.raises(DataError, match="Object arrays cannot be loaded"):
        load_arrays(str(path))


# --- the stores vouch for each other --------------------------------------------------------------
def _sweep_with_runs(store: Path, engine: str = "optuna", trials: int = 2):
    """A sweep as a finished run leaves it in MLflow (parent + trial runs), without training."""
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import make_config

    config = make_config(load_space("mlp"), name="vouch", store=store, engine=engine)
    tracker = tracker_of(config)
    parent = tracker.start_sweep("mlp", "vouch", None, {})
    for number in range(trials):
        tracker.finish_trial(tracker.start_trial(parent, "vouch", number, {}), _state("complete"), 0.9)
    tracker.finish_sweep(parent, {}, "val_accuracy", None, None)
    return config, tracker, parent


def _state(name: str):
    from kerasweep.search.results import TrialState

    return TrialState(name)


@pytest.mark.parametrize("engine, fragment", [
    ("optuna", "that the Optuna storage"),
    ("ray", "the Ray experiment state"),
    ("keras-tuner", "the KerasTuner oracle folder"),
])
def test_a_reset_engine_store_is_refused_and_the_parent_stays_closed(tmp_path: Path, engine: str, fragment: str) -> None:
    from kerasweep.search.sweep import run_sweep

    config, tracker, parent = _sweep_with_runs(tmp_path / "store", engine)
    # the engine's own state is gone (a reset optuna.db, a removed Ray or KerasTuner folder)
    with pytest.raises(UserInputError, match=fragment) as caught:
        run_sweep(config)
    assert "new --name" in str(caught.value)
    # Rule: a refused start changes nothing: the parent is not reopened, no trial run is added
    assert tracker.client.get_run(parent).info.status == "FINISHED"
    assert len(tracker.trial_runs(parent)) == 2


def test_optuna_trials_whose_mlflow_runs_are_gone_are_refused(tmp_path: Path) -> None:
    import optuna

    from kerasweep.search.engines.optuna import RUN_ATTR, make_storage
    from kerasweep.search.space import load_space
    from kerasweep.search.sweep import check_stores_agree, make_config

    (tmp_path / "store").mkdir()
    config = make_config(load_space("mlp"), name="vouch", store=tmp_path / "store")
    study = optuna.create_study(study_name="vouch", storage=make_storage(config), direction="maximize")
    trial = study.ask()
    trial.set_user_attr(RUN_ATTR, "0" * 32)
    study.tell(trial, 0.5)
    # Rule: Optuna knows a trial whose MLflow run does not exist: the tracking store was reset or replaced
    with pytest.raises(UserInputError, match="parent run is missing"):
        check_stores_agree(config, tracker_of(config))


# --- exports ------------------------------------------------------------------------------------------
GOOD_EXPORT = ("model: mlp\ndata: iris\nparams: {units: 8, batch_size: 16, optimizer: adam}\nepochs: 1\nseed: 0\n"
               "validation_split: 0.2\nmonitor: val_accuracy\ndirection: maximize\n"
               "provenance: {space: iris_mlp, sweep: s, engine: optuna, trial: 3}\n")


@pytest.mark.parametrize("change, fragment", [
    (("space: iris_mlp", "space: /some/where"), "provenance.space: String should match pattern"),
    (("space: iris_mlp", "space: ../up"), "provenance.space"),
    (("trial: 3", "trial: 3, path: /x"), "provenance.path: unknown key"),
    (("validation_split: 0.2", "validation_split: 5"), "validation_split: Input should be less than 1"),
    (("monitor: val_accuracy", "monitor: val_acc"), "monitor: task classification does not log 'val_acc'"),
    (("optimizer: adam", "optimizer: adamx"), "params.optimizer: unknown optimizer 'adamx'"),
    (("batch_size: 16", "batch_size: 0"), "params.batch_size: batch_size must be >= 1, got 0"),
    (("units: 8", "unitz: 8"), "params.unitz: unknown param"),
    (("epochs: 1", "epochs: 1.5"), "epochs: Input should be a valid integer"),
])
def test_exports_are_checked_as_strictly_as_spaces(tmp_path: Path, change: tuple[str, str], fragment: str) -> None:
    from kerasweep.search.export import read_export

    path = tmp_path / "e.yaml"
    path.write_text(GOOD_EXPORT.replace(*change))
    with pytest.raises(UserInputError) as caught:
        read_export(path)
    assert fragment in str(caught.value), str(caught.value)
    path.write_text(GOOD_EXPORT)
    spec, provenance = read_export(path)
    assert spec.params["units"] == 8 and provenance.space == "iris_mlp"


def test_a_tampered_export_writes_nothing_anywhere(tmp_path: Path) -> None:
    outside = tmp_path / "some" / "where"
    export = tmp_path / "e.yaml"
    export.write_text(GOOD_EXPORT.replace("space: iris_mlp", f"space: {outside}"))
    store = tmp_path / "store"
    result = run_cli("train", str(export), "--store", str(store))
    # Rule: exit 2 with the field named, before any training, and nothing written inside or outside the store
    assert result.returncode == 2 and "provenance.space" in result.stderr, result.stderr
    assert "Training" not in result.stdout
    assert not outside.parent.exists() and not store.exists()
