"""The docs are true (issue 28): they build strictly, every module is in the architecture table, and their
examples run: the docstring examples, the README's space file, the Python pages' code in a fresh interpreter."""

from __future__ import annotations

import doctest
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

DOCTESTED = ["kerasweep.search.export"]  # modules whose docstrings carry a `>>>` example


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.MULTILINE | re.DOTALL)


def test_the_docs_build_strictly_offline(tmp_path: Path) -> None:
    built = subprocess.run([str(Path(sys.executable).with_name("mkdocs")), "build", "--strict", "-d", str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    # Rule: a broken link, anchor or API reference fails the build
    assert built.returncode == 0, built.stderr
    reference = (tmp_path / "reference.html").read_text()
    # Rule: the reference is generated from the docstrings of the public functions
    assert all(name in reference for name in ("load_model", "trials_dataframe", "best_params", "UserInputError"))
    page = (tmp_path / "index.html").read_text()
    # Rule: nothing is fetched from the internet to show a page
    assert not re.findall(r'(?:src|href)="https?://(?!www\.mkdocs\.org)[^"]*\.(?:js|css)"', page)


def test_the_readme_is_a_landing_page_and_links_only_to_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    # Rule: the README stays short; the rest lives in docs/
    assert len(readme.splitlines()) <= 250
    linked = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert linked and all((ROOT / link).is_file() for link in linked), linked
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = {next(iter(entry.values())) for entry in nav}
    # Rule: every page in docs/ is in the navigation
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_the_readme_space_file_is_a_valid_space() -> None:
    import kerasweep

    first, forecast = _blocks(ROOT / "README.md", "yaml")
    space = kerasweep.Space.model_validate(yaml.safe_load(first))
    # Rule: the README's example space passes every check a space file gets (its CSV is the reader's own)
    assert space.task == "binary" and "momentum" in space.params
    shipped = yaml.safe_load((ROOT / "spaces" / "forecast.yaml").read_text())
    # Rule: the forecasting lines are the shipped forecast space's own
    assert {k: v for k, v in shipped.items() if k in ("task", "target", "forecast")} == \
        {k: v for k, v in yaml.safe_load(forecast).items() if k != "params"}


def test_every_module_is_in_the_architecture_table() -> None:
    table = (ROOT / "docs" / "architecture.md").read_text()
    modules = [p.relative_to(ROOT).as_posix() for folder in ("search", "search/engines", "search/service", "trainers")
               for p in sorted((ROOT / folder).glob("*.py")) if p.name != "__init__.py" or folder == "search/engines"]
    # Rule: the module map is complete
    assert [m for m in modules if f"| `{m}` |" not in table] == []


@pytest.mark.parametrize("module", DOCTESTED)
def test_docstring_examples_run(module: str) -> None:
    failed, attempted = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    # Rule: each documented example runs and shows what it says
    assert attempted > 0 and failed == 0


@pytest.mark.slow  # a fresh interpreter sweeps, trains and registers, per page: about 30 s each
@pytest.mark.parametrize("page", ["README.md", "docs/python.md"])
def test_the_python_examples_run_as_written(page: str, tmp_path: Path) -> None:
    code = "\n\n".join(_blocks(ROOT / page, "python"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERASWEEP_STORE": str(tmp_path / "unused")}
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    # Rule: every Python block of the page runs in order, in a fresh folder, as a reader would paste it
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    assert (tmp_path / "runs" / "mlflow.db").exists()
