"""Browsing a sweep: the MLflow UI in a real headless Chromium, plots, TensorBoard, optuna-dashboard."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, mlflow_client, optuna_trials, serving, sweep_runs

KERASWEEP = str(Path(sys.executable).with_name("kerasweep"))
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"


def _chromium():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's chromium and chromium-driver are missing; .ci/run installs them")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", "--window-size=1400,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _wait_for_text(driver, text: str, timeout: float = 60.0) -> str:
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while time.time() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        if text in body.split("\n") or text in body.split():
            return body
        time.sleep(0.5)
    raise AssertionError(f"{text!r} never appeared; page shows: {body[:1500]}")


def test_mlflow_ui_shows_the_sweep_and_its_trials_in_chromium(swept: dict) -> None:
    from selenium.webdriver.common.by import By

    driver = _chromium()
    port = free_port()
    try:
        with serving([KERASWEEP, "ui", "--port", str(port), "--store", str(swept["store"])], port) as url:
            experiment = json.load(urllib.request.urlopen(
                f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=cnn"))["experiment"]
            driver.get(f"{url}/#/experiments/{experiment['experiment_id']}/runs")
            # Rule: the sweep's parent run is listed
            _wait_for_text(driver, "tiny")
            expand = driver.find_element(By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']")
            expand.click()
            # Rule: its trial runs are nested under it
            body = _wait_for_text(driver, "trial-0")
            assert "trial-1" in body.split("\n")
            ARTIFACTS.mkdir(exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "mlflow-ui.png"))
    finally:
        driver.quit()
    assert (ARTIFACTS / "mlflow-ui.png").stat().st_size > 10_000


def test_parent_run_has_the_sweep_plots(swept: dict) -> None:
    client = mlflow_client(swept["store"])
    parents, _ = sweep_runs(client, "cnn", "tiny")
    files = {a.path for a in client.list_artifacts(parents[0].info.run_id, "plots")}
    # Rule: the parent run carries optimisation history, importances, parallel coordinates, learning curves
    for name in ("optimization_history", "param_importances", "parallel_coordinate", "intermediate_values"):
        assert f"plots/{name}.png" in files
    assert "plots/sweep.html" in files
    page = Path(client.download_artifacts(parents[0].info.run_id, "plots/sweep.html"))
    assert "cdn.plot.ly" not in page.read_text()[:5000]  # self-contained: opens offline


def test_each_trial_writes_tensorboard_logs_and_tensorboard_serves_them(swept: dict) -> None:
    store = swept["store"]
    trials = optuna_trials(store, "tiny")
    for trial in trials:
        # Rule: every trial has TensorBoard event files under the store
        assert list((store / "tensorboard" / "tiny" / f"trial-{trial.number}").rglob("events.out.tfevents.*"))
    port = free_port()
    with serving([KERASWEEP, "tensorboard", "tiny", "--port", str(port), "--store", str(store)], port,
                 health="/data/runs") as url:
        runs = json.load(urllib.request.urlopen(f"{url}/data/runs"))
        for _ in range(60):  # TensorBoard reads the event files in the background after it starts serving
            shown = json.load(urllib.request.urlopen(
                f"{url}/data/plugin/scalars/scalars?run=trial-0/validation&tag=epoch_accuracy"))
            if shown:
                break
            time.sleep(0.5)
        foreign = _status(f"{url}/data/runs", "GET", host=f"rebound.example:{port}")
    # Rule: a request for a foreign Host (a DNS-rebinding page) is refused before it reaches TensorBoard
    assert foreign == 403
    # Rule: make tensorboard serves the sweep's trial runs on 127.0.0.1
    assert any(run.startswith("trial-0") for run in runs)
    # Rule: TensorBoard shows each epoch's value as MLflow logged it (epochs count from 0 there, from 1 in MLflow)
    run_id = next(t.user_attrs["kerasweep.mlflow_run_id"] for t in trials if t.number == 0)
    logged = sorted((m.step, m.value) for m in mlflow_client(store).get_metric_history(run_id, "val_accuracy"))
    assert [step for _, step, _ in shown] == [step - 1 for step, _ in logged]
    assert [value for _, _, value in shown] == pytest.approx([value for _, value in logged])


def test_optuna_dashboard_serves_the_sweep_storage(swept: dict) -> None:
    port = free_port()
    with serving([KERASWEEP, "dashboard", "tiny", "--port", str(port), "--store", str(swept["store"])], port,
                 health="/api/studies") as url:
        studies = json.load(urllib.request.urlopen(f"{url}/api/studies"))["study_summaries"]
        study_id = next(s["study_id"] for s in studies if s["study_name"] == "tiny")
        foreign = _status(f"{url}/api/studies/{study_id}", "DELETE", host=f"rebound.example:{port}")
        after = json.load(urllib.request.urlopen(f"{url}/api/studies"))["study_summaries"]
    # Rule: make dashboard serves the sweep's Optuna study on 127.0.0.1
    assert "tiny" in [s["study_name"] for s in studies]
    # Rule: a DELETE for a foreign Host (a DNS-rebinding page) is refused and the study stays
    assert foreign == 403 and "tiny" in [s["study_name"] for s in after]


def _status(url: str, method: str, host: str) -> int:
    """The HTTP status of one request sent with the given Host header."""
    request = urllib.request.Request(url, method=method, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_dashboard_for_unknown_sweep_is_bad_input(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    proc = run_cli("dashboard", "nope", "--store", str(tmp_path))
    assert proc.returncode == 2 and "sweep 'nope' not found" in proc.stderr
    assert shutil.which("optuna-dashboard") or Path(sys.executable).with_name("optuna-dashboard").exists()


def test_ui_over_a_tracking_server_says_to_open_its_own(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from kerasweep.search.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    result = CliRunner().invoke(main, ["ui", "--store", str(tmp_path / "store")])
    # Rule: one line and exit 2, not a traceback (issue 32, item 10)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: MLFLOW_TRACKING_URI: http://127.0.0.1:5999 is a tracking server, which serves its own UI: open it in "
        "a browser; unset MLFLOW_TRACKING_URI to serve the store's runs here instead"]
