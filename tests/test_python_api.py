"""The Python API is the CLI (issue 28): `kerasweep.sweep / status / export / train / load_model` do what the
commands do, on the same store, and a notebook sees no library warning lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, invoke_cli


@pytest.mark.slow  # a fresh interpreter sweeps, trains and registers: 25 s
def test_a_notebook_sweep_prints_only_what_it_was_asked_and_matches_the_cli(tmp_path: Path) -> None:
    import kerasweep

    store = tmp_path / "s"
    code = (f"import kerasweep; r = kerasweep.sweep('mlp', trials=2, epochs=2, store={str(store)!r}); "
            "print(sorted(r.best_params), r.trials_dataframe().shape, r.best_value is not None)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "TF_CPP_MIN_LOG_LEVEL")}
    ran = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    # Rule: a sweep from Python prints no warning or log line of the libraries kerasweep calls
    assert ran.stderr.strip() == "", ran.stderr
    searched = sorted(kerasweep.load_space("mlp").params)
    assert ran.stdout.split("(2,")[0].strip() != "[]"
    found = kerasweep.status("mlp", store)["mlp"]
    # Rule: best_params holds searched values only (the space's fixed ones are in best_trial.params)
    assert set(found.best_params) <= set(searched) and found.best_trial.number == found.best.number
    frame = found.trials_dataframe()
    assert list(frame["number"]) == [0, 1] and set(frame["state"]) <= {"complete", "pruned"}
    status = invoke_cli("status", "mlp", "--store", str(store))
    # Rule: the CLI's status shows what status() returns
    assert f"{found.best_value:.4f} (#{found.best.number})" in status.stdout
    (python_path,) = kerasweep.export("mlp", store, output=tmp_path / "py.yaml")
    exported = invoke_cli("export", "mlp", "--store", str(store), "--output", str(tmp_path / "cli.yaml"))
    assert exported.returncode == 0, exported.stderr

    def without_time(path: Path) -> dict:
        document = yaml.safe_load(path.read_text())
        document["provenance"].pop("exported_at")
        return document

    # Rule: export() writes what `kerasweep export` writes
    assert without_time(python_path) == without_time(tmp_path / "cli.yaml")
    trained = kerasweep.train(python_path, store, epochs=1)
    model = kerasweep.load_model("mlp", store=store)
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    # Rule: load_model gives the registered model (its latest version), answering raw rows
    assert trained.version == 1 and len(model.predict(bunch.data.head(3))) == 3


def test_the_public_names_are_declared_and_unknown_ones_are_refused() -> None:
    import kerasweep

    assert {"sweep", "status", "export", "train", "load_model", "load_space", "Space", "SweepResult", "TrialResult",
            "TrialState", "UserInputError"} <= set(kerasweep.__all__)
    assert all(getattr(kerasweep, name) is not None for name in kerasweep.__all__)
    with pytest.raises(AttributeError, match="public names: "):
        kerasweep.run_sweep  # noqa: B018 - an internal name is not public
