"""One import name (issue 28): the distribution installs `kerasweep` alone, so a user's own `search` or `trainers`
package stays theirs, and the public names load from `kerasweep`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, write_space


def test_the_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("kerasweep-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # Rule: site-packages gains kerasweep and nothing named search or trainers
    assert {name.split("/")[0] for name in names} == {"kerasweep", wheel.name.split("-py")[0] + ".dist-info"}
    assert "kerasweep/search/cli.py" in names and "kerasweep/trainers/fit.py" in names
    top_level = next(name for name in names if name.endswith("top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["kerasweep"]


@pytest.mark.slow  # the CLI in a fresh interpreter from the user's folder: 20 s
def test_a_project_with_its_own_trainers_and_search_packages_sweeps_with_its_builder(tmp_path: Path) -> None:
    for package in ("trainers", "search"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "trainers" / "mymodel.py").write_text(
        "import keras\n\n\ndef build(values, input_shape, n_outputs):\n"
        "    inputs = keras.Input(input_shape)\n"
        "    hidden = keras.layers.Dense(values['width'], activation='relu')(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Dense(n_outputs, activation='softmax')(hidden))\n")
    write_space(tmp_path, """
        name: own
        model: trainers.mymodel:build
        data: iris
        budget: {trials: 1, epochs: 1}
        params: {width: {type: int, low: 4, high: 8}}
        """)
    swept = run_cli("sweep", "space.yaml", "--store", "store", cwd=tmp_path)
    # Rule: the CLI loads the user's own trainers.mymodel (kerasweep's trainers is kerasweep.trainers)
    assert swept.returncode == 0, swept.stderr + swept.stdout
    probe = "import trainers.mymodel, search, kerasweep; print(trainers.mymodel.__file__, kerasweep.Space.__module__)"
    found = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [str(tmp_path / "trainers" / "mymodel.py"), "kerasweep.search.space"]
