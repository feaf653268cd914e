"""Bad input of every kind (data files, flags, stores, names, exported configs) fails fast and clearly.

Each case: exit code 2, one error line that names the file or flag and the field, what was received
and what was expected; no traceback; nothing written to any store. (Space files have their own table
in test_space_validation.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerasweep.search.cli import main


def _space(folder: Path, data: str) -> Path:
    path = folder / "space.yaml"
    path.write_text(f"name: s\nmodel: mlp\ndata: {data}\nparams:\n  units: {{type: int, low: 4, high: 8}}\n")
    return path


def _npz(folder: Path, **arrays: np.ndarray) -> str:
    np.savez(folder / "d.npz", **arrays)
    return str(folder / "d.npz")


def _csv(folder: Path, text: str) -> str:
    (folder / "d.csv").write_text(text)
    return str(folder / "d.csv")


def _export(folder: Path, text: str) -> str:
    (folder / "best.yaml").write_text(text)
    return str(folder / "best.yaml")


def _mixed_choices(folder: Path) -> str:
    (folder / "m.yaml").write_text("name: m\nmodel: mlp\ndata: iris\nparams:\n  units: {type: categorical, choices: [8, '16']}\n")
    return str(folder / "m.yaml")


def _builder_typo(folder: Path) -> str:
    """The bundled user-builder space with one param misspelt: the builder never reads it."""
    text = (Path(__file__).resolve().parents[1] / "spaces" / "custom.yaml").read_text()
    (folder / "typo.yaml").write_text(text.replace("  learning_rate:", "  learning_rat:"))
    return str(folder / "typo.yaml")


GOOD_EXPORT = "model: mlp\ndata: iris\nparams: {units: 8}\nepochs: 2\nseed: 0\n"

# (case, how to build the command in a folder, fragments of the error line)
CASES = [
    # data files named by a space
    ("data file missing", lambda f: ["sweep", str(_space(f, "nope.npz"))], ["data: 'nope.npz'", "existing file"]),
    ("data folder with no images", lambda f: ["sweep", str(_space(f, str(f / "empty_dir")))] if (f / "empty_dir").mkdir() is None else [], ["no images found"]),
    ("npz with no rows", lambda f: ["sweep", str(_space(f, _npz(f, x=np.zeros((0, 3)), y=np.zeros(0))))], ["d.npz", "no examples"]),
    ("npz without x/y", lambda f: ["sweep", str(_space(f, _npz(f, a=np.zeros((4, 3)))))], ["d.npz", "missing array(s) x, y"]),
    ("features of a wrong rank", lambda f: ["sweep", str(_space(f, _npz(f, x=np.zeros((8, 2, 2, 2, 2)), y=np.arange(8) % 2)))], ["d.npz", "features have shape (8, 2, 2, 2, 2)"]),
    ("labels of a wrong length", lambda f: ["sweep", str(_space(f, _npz(f, x=np.zeros((8, 3)), y=np.zeros(5))))], ["d.npz", "labels have shape (5,)", "expected (8,)"]),
    ("labels that are not classes", lambda f: ["sweep", str(_space(f, _npz(f, x=np.zeros((8, 3)), y=np.linspace(0, 1, 8))))], ["d.npz", "not classes"]),
    ("a single class", lambda f: ["sweep", str(_space(f, _npz(f, x=np.zeros((8, 3)), y=np.zeros(8))))], ["d.npz", "found 1 class"]),
    ("a class with one example", lambda f: ["sweep", str(_space(f, _npz(f, x=np.zeros((5, 3)), y=np.array([0, 0, 0, 0, 1]))))], ["d.npz", "at least 2 examples"]),
    ("NaN features", lambda f: ["sweep", str(_space(f, _npz(f, x=np.full((8, 3), np.nan), y=np.arange(8) % 2)))], ["d.npz", "NaN or infinite"]),
    ("not a zip", lambda f: ["sweep", str(_space(f, str(f / "x.npz")))] if (f / "x.npz").write_text("junk") else [], ["x.npz", "not a readable .npz"]),
    ("csv without label column", lambda f: ["sweep", str(_space(f, _csv(f, "a,b\n1,2\n3,4\n")))], ["d.csv", "no target column 'label'", "target:"]),
    ("csv with only an id column", lambda f: ["sweep", str(_space(f, _csv(f, "customer_id,label\nx,0\ny,1\nz,0\nw,1\n")))], ["d.csv", "no feature column is left", "identifier: customer_id", "columns: {name: numeric}"]),
    ("empty csv", lambda f: ["sweep", str(_space(f, _csv(f, "")))], ["d.csv", "not a readable CSV"]),
    ("data with a wrong suffix", lambda f: ["sweep", str(_space(f, str(f / "d.parquet")))] if (f / "d.parquet").write_text("x") else [], ["suffix '.parquet'", ".npz or .csv"]),
    # CLI flags
    ("--trials 0", lambda f: ["sweep", "mlp", "--trials", "0"], ["--trials", "0"]),
    ("--epochs -1", lambda f: ["sweep", "mlp", "--epochs", "-1"], ["--epochs", "-1"]),
    ("--workers 0", lambda f: ["sweep", "mlp", "--workers", "0"], ["--workers", "0"]),
    ("--pruner unknown", lambda f: ["sweep", "mlp", "--pruner", "asha2"], ["--pruner", "asha2"]),
    ("--sampler unknown", lambda f: ["sweep", "mlp", "--sampler", "bohb"], ["--sampler", "bohb"]),
    ("--engine unknown", lambda f: ["sweep", "mlp", "--engine", "hyperopt"], ["--engine", "hyperopt"]),
    ("--gpus-per-trial negative", lambda f: ["sweep", "mlp", "--gpus-per-trial", "-0.5"], ["--gpus-per-trial", "-0.5"]),
    ("--max-failures negative", lambda f: ["sweep", "mlp", "--max-failures", "-2"], ["--max-failures", "-2"]),
    ("--seed not a number", lambda f: ["sweep", "mlp", "--seed", "abc"], ["--seed", "abc"]),
    ("unknown flag", lambda f: ["sweep", "mlp", "--trails", "3"], ["--trails"]),
    ("sampler of another engine", lambda f: ["sweep", "mlp", "--engine", "keras-tuner", "--sampler", "tpe"], ["--sampler", "'tpe'", "keras-tuner", "hyperband, random, bayesian"]),
    ("keras-tuner with workers", lambda f: ["sweep", "mlp", "--engine", "keras-tuner", "--workers", "2"], ["--workers", "engine 'keras-tuner' does not take it", "optuna does"]),
    ("cpus per trial on optuna", lambda f: ["sweep", "mlp", "--cpus-per-trial", "2"], ["--cpus-per-trial", "engine 'optuna' does not take it", "ray does"]),
    ("--checkpoint-every negative", lambda f: ["sweep", "mlp", "--checkpoint-every", "-1"], ["--checkpoint-every", "-1"]),
    ("storage on ray", lambda f: ["sweep", "mlp", "--engine", "ray", "--storage", "sqlite:///x.db"], ["--storage", "engine 'ray' does not take it", "optuna does"]),
    ("user builder ignores a param", lambda f: ["sweep", _builder_typo(f)], ["typo.yaml", "params:", "never read learning_rat", "it reads conv_layers, width"]),
    ("keras-tuner mixed choices", lambda f: ["sweep", _mixed_choices(f), "--engine", "keras-tuner"], ["m.yaml", "params.units.choices", "units is a whole number, got '16'"]),
    # stores and names
    ("store is a file", lambda f: ["sweep", "mlp", "--store", str(f / "file")] if (f / "file").write_text("x") else [], ["--store", "not a folder"]),
    ("name escapes the store", lambda f: ["sweep", "mlp", "--name", "../escape"], ["--name", "'../escape'", "not a valid sweep name"]),
    ("name with a slash", lambda f: ["sweep", "mlp", "--name", "a/b"], ["--name", "'a/b'"]),
    ("space name not found", lambda f: ["sweep", "mlq"], ["space 'mlq' not found", "mlp"]),
    ("status of an unknown sweep", lambda f: ["status", "ghost"], ["sweep 'ghost' not found"]),
    ("export of an unknown sweep", lambda f: ["export", "ghost"], ["sweep 'ghost' not found"]),
    # exported configs
    ("export file missing", lambda f: ["train", str(f / "none.yaml")], ["none.yaml", "config file not found"]),
    ("export not YAML", lambda f: ["train", _export(f, "model: [mlp\n")], ["best.yaml", "not valid YAML"]),
    ("export not a mapping", lambda f: ["train", _export(f, "- mlp\n")], ["best.yaml", "expected a mapping"]),
    ("export unknown key", lambda f: ["train", _export(f, GOOD_EXPORT + "lr: 0.1\n")], ["best.yaml", "lr: unknown key", "valid keys"]),
    ("export missing model", lambda f: ["train", _export(f, "data: iris\n")], ["best.yaml", "model: missing required field"]),
    ("export unknown model", lambda f: ["train", _export(f, GOOD_EXPORT.replace("mlp", "resnet"))], ["best.yaml", "model: unknown model 'resnet'"]),
    ("export bad epochs", lambda f: ["train", _export(f, GOOD_EXPORT.replace("epochs: 2", "epochs: zero"))], ["best.yaml", "epochs:", "'zero'"]),
    ("export params not a mapping", lambda f: ["train", _export(f, GOOD_EXPORT.replace("{units: 8}", "[8]"))], ["best.yaml", "params:", "mapping"]),
    ("export data missing", lambda f: ["train", _export(f, GOOD_EXPORT.replace("iris", "gone.npz"))], ["best.yaml", "data: 'gone.npz'"]),
]


@pytest.mark.parametrize("case, build, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_clear_line(tmp_path: Path, case: str, build, fragments: list[str]) -> None:
    args = build(tmp_path)
    store = tmp_path / "store"
    if "--store" not in args:
        args = [*args, "--store", str(store)]
    result = CliRunner().invoke(main, args)
    # Rule: bad input is exit 2, without a traceback
    assert result.exit_code == 2, (case, result.output)
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    error_lines = [line for line in result.output.splitlines() if line.startswith(("error:", "Error:"))]
    # Rule: one error line that holds the file or flag, the field and the received value
    assert len(error_lines) == 1, result.output
    message = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"
    # Rule: nothing was written to any store
    assert not store.exists()


def test_the_table_is_big_enough() -> None:
    # Rule (issue 5): at least 30 cases across data files, flags, stores, names and exported configs
    assert len(CASES) >= 30
