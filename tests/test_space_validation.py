"""Bad space files fail before any compute, with one line naming file, field, value and rule (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kerasweep.search.cli import main
from kerasweep.search.errors import UserInputError
from tests.conftest import run_cli, write_space

GOOD = """
name: t
model: cnn
data: digits
params:
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
  optimizer: {type: categorical, choices: [adam, sgd]}
  momentum: {type: float, low: 0.0, high: 0.9, when: {optimizer: sgd}}
"""

# (what is wrong, the file's text, fragments the one-line message must hold)
BAD_SPACES = [
    ("unknown top-level key", GOOD + "budgett: {trials: 3}\n", ["budgett: unknown key", "valid keys:", "budget"]),
    ("unknown param key", GOOD.replace("log: true}", "log: true, lo: 1}"), ["params.learning_rate.lo: unknown key", "low"]),
    ("missing model", GOOD.replace("model: cnn\n", ""), ["model: missing required field"]),
    ("missing params", "name: t\nmodel: cnn\ndata: digits\n", ["params: declare at least one param"]),
    ("wrong type of low", GOOD.replace("low: 1.0e-4", "low: abc"), ["params.learning_rate.low", "'abc'"]),
    ("low >= high", GOOD.replace("high: 1.0e-1", "high: 1.0e-5"), ["params.learning_rate.low", "low < high", "low=0.0001"]),
    ("log with low <= 0", GOOD.replace("low: 1.0e-4", "low: 0.0"), ["params.learning_rate.low", "> 0 when log: true", "0.0"]),
    ("empty choices", GOOD.replace("[adam, sgd]", "[]"), ["params.optimizer.choices", "at least one"]),
    ("unknown param type", GOOD.replace("type: float, low: 1.0e-4", "type: floaty, low: 1.0e-4"), ["params.learning_rate.type", "float, int, categorical", "'floaty'"]),
    ("when names unknown param", GOOD.replace("when: {optimizer: sgd}", "when: {optimiser: sgd}"), ["params.momentum.when.optimiser", "names no declared param"]),
    ("when value parent cannot take", GOOD.replace("when: {optimizer: sgd}", "when: {optimizer: sgdd}"), ["params.momentum.when.optimizer", "cannot take 'sgdd'"]),
    ("unknown optimizer", GOOD.replace("[adam, sgd]", "[adam, sgd, adamax2]"), ["params.optimizer.choices", "'adamax2'", "Keras knows"]),
    ("unknown activation", GOOD + "fixed: {activation: relux}\n", ["fixed.activation", "'relux'", "relu"]),
    ("unknown model", GOOD.replace("model: cnn", "model: resnet9000"), ["model: unknown model 'resnet9000'", "cnn, mlp"]),
    ("unknown dataset", GOOD.replace("data: digits", "data: mnist_offline"), ["data: 'mnist_offline'", "bundled dataset"]),
    ("missing data file", GOOD.replace("data: digits", "data: nowhere/train.npz"), ["data: 'nowhere/train.npz'", "existing file"]),
    ("objective metric typo", GOOD + "objective: {metric: val_acc}\n", ["objective.metric", "'val_acc'", "did you mean 'val_accuracy'"]),
    ("objective direction", GOOD + "objective: {direction: up}\n", ["objective.direction", "'up'", "maximize"]),
    ("unknown sampler", GOOD + "search: {sampler: bohb}\n", ["search.sampler", "'bohb'", "tpe"]),
    ("zero trials", GOOD + "budget: {trials: 0}\n", ["budget.trials", "greater than or equal to 1", "0"]),
    ("misspelled param name", GOOD.replace("momentum:", "momentun:"), ["params.momentun", "did you mean 'momentum'"]),
    ("not a mapping", "- just\n- a list\n", ["expected a mapping"]),
    ("not YAML", "name: [unclosed\n", ["not valid YAML", "line"]),
    ("param both fixed and searched", GOOD + "fixed: {learning_rate: 0.1}\n", ["fixed.learning_rate", "also declared under params"]),
    ("child before parent", GOOD.replace(
        "  optimizer: {type: categorical, choices: [adam, sgd]}\n  momentum: {type: float, low: 0.0, high: 0.9, when: {optimizer: sgd}}\n",
        "  momentum: {type: float, low: 0.0, high: 0.9, when: {optimizer: sgd}}\n  optimizer: {type: categorical, choices: [adam, sgd]}\n",
    ), ["params.momentum.when.optimizer", "must be declared before"]),
    ("bad sweep name in space", GOOD.replace("name: t", "name: 'my sweep/1'"), ["name:", "pattern"]),
]


@pytest.mark.parametrize("case, text, fragments", BAD_SPACES, ids=[c[0] for c in BAD_SPACES])
def test_bad_space_fails_fast_with_a_clear_message(tmp_path: Path, case: str, text: str, fragments: list[str]) -> None:
    space = write_space(tmp_path, text, "bad.yaml")
    store = tmp_path / "store"
    result = CliRunner().invoke(main, ["sweep", str(space), "--store", str(store)])
    # Rule: bad input exits 2, and the message names the file and the field
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert str(space) in message
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"
    # Rule: nothing was written: validation happens before any store exists
    assert not store.exists()
    assert "Traceback" not in result.output


def test_there_are_enough_cases() -> None:
    # Rule (issue 2): at least 15 bad space files are checked
    assert len(BAD_SPACES) >= 15


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["sweep", "no_such_space"], "space 'no_such_space' not found"),
        (["sweep", "cnn", "--trials", "0"], "--trials"),
        (["sweep", "cnn", "--engine", "nope"], "--engine"),
        (["sweep", "cnn", "--sampler", "bohb"], "--sampler"),
        (["sweep", "cnn", "--name", "a b/c"], "--name"),
        (["export", "never_ran"], "sweep 'never_ran' not found"),
        (["train", "missing.yaml"], "missing.yaml: config file not found"),
    ],
)
def test_bad_flags_exit_2_before_any_work(tmp_path: Path, args: list[str], fragment: str) -> None:
    store = tmp_path / "store"
    result = CliRunner().invoke(main, [*args, "--store", str(store)])
    # Rule: bad flags are bad input: exit 2, a message naming the flag, no store written
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert not (store / "optuna.db").exists()


def test_store_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.write_text("not a folder")
    result = CliRunner().invoke(main, ["sweep", "cnn", "--store", str(store)])
    # Rule: a store path that cannot be a folder is bad input
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.output


def test_console_script_reports_one_line_without_traceback(tmp_path: Path) -> None:
    space = write_space(tmp_path, GOOD.replace("low: 1.0e-4", "low: 0.0"))
    proc = run_cli("sweep", str(space), "--store", str(tmp_path / "store"))
    # Rule: the installed command exits 2 with one line per problem on stderr, no traceback
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "params.learning_rate.low" in lines[0]
    assert "Traceback" not in proc.stderr


INT_PARENT = """
name: ip
model: mlp
data: iris
params:
  layers: {type: int, low: 1, high: 3}
  units_2: {type: int, low: 8, high: 32, when: {layers: [2, 3]}}
  units_3: {type: int, low: 8, high: 32, when: {layers: 3}}
"""


def test_conditions_on_an_int_parent(tmp_path: Path) -> None:
    import optuna

    from kerasweep.search.engines._optuna_space import suggest
    from kerasweep.search.engines.keras_tuner import hyperparameters
    from kerasweep.search.space import load_space

    space = load_space(write_space(tmp_path, INT_PARENT))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = suggest(study.ask(), space)
        # Rule: a child exists exactly when its int parent takes one of the named values
        assert ("units_2" in values) == (values["layers"] >= 2) and ("units_3" in values) == (values["layers"] == 3)
    assert {hp.name for hp in hyperparameters(space).space} == {"layers", "units_2", "units_3"}  # KerasTuner scopes
    bad = INT_PARENT.replace("when: {layers: 3}", "when: {layers: 4}")
    with pytest.raises(UserInputError, match=r"params.units_3.when.layers: 'layers' cannot take 4; it takes whole numbers from 1 to 3"):
        load_space(write_space(tmp_path, bad))
    floaty = INT_PARENT.replace("layers: {type: int, low: 1, high: 3}", "layers: {type: float, low: 1, high: 3}")
    with pytest.raises(UserInputError, match="a condition needs a categorical or int parent"):
        load_space(write_space(tmp_path, floaty))


def test_a_grid_is_every_combination_and_needs_steps_for_floats() -> None:
    from kerasweep.search.space import Space

    space = Space.model_validate({"name": "g", "model": "mlp", "data": "iris", "search": {"sampler": "grid"},
                                  "params": {"units": {"type": "int", "low": 8, "high": 32, "step": 8},
                                             "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
                                             "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.25}}})
    # Rule: ints by their step, floats by theirs, choices as given; the size is the product
    assert space.grid() == {"units": [8, 16, 24, 32], "optimizer": ["adam", "sgd"], "dropout": [0.0, 0.25, 0.5]}
    assert space.grid_size() == 24 and space.grid_problems() == []
    loose = Space.model_validate({**space.model_dump(), "params": {
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}}})
    # Rule: a float range without a step has no grid: one line naming it and the fix
    assert loose.grid_problems() == ["params.learning_rate: sampler grid needs a step for a float range (or type: "
                                     "categorical); got low 0.001, high 0.1 and no step"]


@pytest.mark.parametrize(("text", "said"), [
    ("model: mlp\nparams:\n  momentum: {type: float, low: 0.5, high: 0.9}\n",
     ("params.momentum: acts only when optimizer is sgd or rmsprop, but optimizer is 'adam' (its default), so it "
      "would be logged without effect")),
    (("model: mlp\nparams:\n  optimizer: {type: categorical, choices: [adam, sgd]}\n"
      "  momentum: {type: float, low: 0.5, high: 0.9}\n"),
     ("params.momentum: acts only when optimizer is sgd or rmsprop, but optimizer can be 'adam'; add when: "
      "{optimizer: ['sgd']}")),
    ("model: mlp\nparams:\n  layers: {type: int, low: 0, high: 2}\n  units: {type: int, low: 8, high: 32}\n",
     "params.units: acts only when layers is >= 1, but layers can be 0; add when: {layers: [1, 2]}"),
    ("model: mlp\nparams:\n  layers: {type: int, low: 1, high: 3}\n  units_3: {type: int, low: 8, high: 32}\n",
     "params.units_3: acts only when layers is >= 3, but layers can be 1; add when: {layers: [3]}"),
    ("model: cnn\ndata: digits\nparams:\n  rotate: {type: float, low: 0.0, high: 0.1}\n",
     "params.rotate: acts only when augment is True, but augment is False (its default)"),
    ("model: mlp\nparams:\n  units: {type: int, low: 8, high: 32}\nfixed: {lr_schedule: cosine, decay_rate: 0.9}\n",
     "fixed.decay_rate: acts only when lr_schedule is exponential or step, but lr_schedule is 'cosine' (fixed)"),
])
def test_a_param_that_would_not_act_is_refused_with_the_when_it_needs(tmp_path: Path, text: str, said: str) -> None:
    from kerasweep.search.errors import UserInputError
    from kerasweep.search.space import load_space

    with pytest.raises(UserInputError) as caught:
        load_space(write_space(tmp_path, "name: idle\ndata: iris\n" + text if "data:" not in text else
                               "name: idle\n" + text))
    # Rule: a value that would not act is never sampled and logged as if it did: one line with the fix
    assert said in str(caught.value)


def test_a_param_conditioned_on_its_parent_is_accepted(tmp_path: Path) -> None:
    from kerasweep.search.space import load_space

    space = load_space(write_space(tmp_path, "name: fine\nmodel: mlp\ndata: iris\nparams:\n"
                                             "  optimizer: {type: categorical, choices: [adam, sgd, rmsprop]}\n"
                                             "  momentum: {type: float, low: 0.5, high: 0.9, when: {optimizer: [sgd, rmsprop]}}\n"
                                             "fixed: {nesterov: false}\n"))
    assert space.params["momentum"].when == {"optimizer": ["sgd", "rmsprop"]}


def test_a_user_builder_may_read_what_the_shipped_models_would_not(tmp_path: Path, monkeypatch) -> None:
    from kerasweep.search.space import load_space

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    # Rule: a builder that compiles its own SGD may read momentum; its reads are checked when it builds
    space = load_space(write_space(tmp_path, "name: own\nmodel: examples.custom_model:build\ndata: digits\nparams:\n"
                                             "  momentum: {type: float, low: 0.5, high: 0.9}\n"))
    assert "momentum" in space.params


def test_a_space_built_in_python_is_refused_as_its_file_would_be(tmp_path: Path) -> None:
    from kerasweep.search.space import Space, SpaceProblems, load_space

    document = {"name": "typo", "model": "mlp", "data": "iris",
                "params": {"learnin_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                           "units": {"type": "int", "low": 64, "high": 8}}}
    with pytest.raises(SpaceProblems) as built:
        Space.model_validate(document)
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(UserInputError) as read:
        load_space(tmp_path / "typo.yaml")
    # Rule: a misspelt param and low > high are refused in Python with the YAML path's lines (a dict, Space(...))
    from_file = [line.split(": ", 1)[1] for line in str(read.value).splitlines()]
    assert built.value.problems == from_file
    assert any("unknown param 'learnin_rate' (did you mean 'learning_rate'?)" in p for p in built.value.problems)
    assert any(p.startswith("params.units.low: low < high must hold") for p in built.value.problems)
    with pytest.raises(SpaceProblems):
        Space(**document)
