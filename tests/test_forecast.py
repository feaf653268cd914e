"""Forecasting (issue 29): windows built by kerasweep and split in time, gaps dropped or filled and counted,
the naive forecasts beside every result, and a served model that forecasts from the latest raw rows
exactly as the trial was scored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kerasweep.trainers.forecast import ForecastOptions, make_windows, seasonal_series
from kerasweep.trainers.series_plan import SeriesError, SeriesPlan, regular_step
from tests.conftest import QUIET_ENV, ROOT, invoke_cli, mlflow_client, run_cli, sweep_runs, write_space


def _windows(frame: pd.DataFrame, lookback: int = 12, split: float = 0.2, **options) -> object:
    return make_windows("series", frame, ("sales",), ForecastOptions(time="month", **options), lookback, split)


def _target_times(windows, ends: np.ndarray) -> pd.Series:
    """The time of every target of the windows ending at `ends`."""
    rows = (ends[:, None] + np.arange(1, windows.plan.horizon + 1)[None, :]).ravel()
    return windows.series[windows.plan.time].iloc[rows]


def test_every_validation_target_is_later_than_every_training_target() -> None:
    windows = _windows(seasonal_series(), horizon=3)
    train, val = _target_times(windows, windows.train_ends), _target_times(windows, windows.val_ends)
    # Rule: the split follows time: no training window's target falls in the validation period
    assert train.max() < windows.val_start <= val.min()
    assert str(windows.val_start.date()) == "2014-01-01"  # the last 20 % of 360 months
    # Rule: validation windows may read training rows as history, never the other way round
    assert len(windows.x_val) == 360 - 288 - 3 + 1 and len(windows.x_train) == 288 - 12 - 3 + 1


def test_windows_are_keras_timeseries_windows(tmp_path: Path) -> None:
    import keras

    frame = pd.DataFrame({"month": range(40), "sales": np.arange(40.0) ** 1.5, "price": np.arange(40.0) % 7})
    windows = make_windows("series", frame, ("sales",), ForecastOptions(time="month", horizon=2, sampling_rate=2),
                           5, 0.25)
    values = frame[["sales", "price"]].to_numpy("float32")
    span = windows.plan.span
    expected = np.concatenate([x.numpy() for x in keras.utils.timeseries_dataset_from_array(
        values, None, sequence_length=5, sampling_rate=2, batch_size=64)])  # windows starting at each row
    # Rule: the same windows as Keras' timeseries_dataset_from_array (sampling every 2nd row), targets next
    assert np.array_equal(windows.x_train, expected[windows.train_ends - span + 1])
    first = windows.train_ends[0]
    assert windows.y_train[0].tolist() == pytest.approx([frame["sales"][first + 1], frame["sales"][first + 2]])


def test_gaps_drop_the_windows_they_touch_or_are_interpolated() -> None:
    frame = seasonal_series(120)
    frame.loc[[30, 31, 70], "sales"] = np.nan
    dropped = _windows(frame, lookback=6, horizon=2)
    whole = _windows(seasonal_series(120), lookback=6, horizon=2)
    # Rule: a window whose inputs or targets touch a missing cell is left out and counted: the two adjacent
    # gaps spoil 6 + 2 + 1 windows ending at rows 23..32, the single one 6 + 2 windows (70 - 2 .. 70 + 5)
    assert dropped.dropped == 9 + 8
    assert len(dropped.x_train) + len(dropped.x_val) + dropped.dropped == len(whole.x_train) + len(whole.x_val)
    assert not np.isnan(dropped.x_train).any() and any("17 window(s) left out" in n for n in dropped.notices())
    filled = _windows(frame, lookback=6, horizon=2, missing="interpolate")
    # Rule: interpolate fills the gaps linearly in time and keeps every window
    assert filled.dropped == 0 and len(filled.x_train) == len(whole.x_train)
    assert filled.series["sales"][30] == pytest.approx((2 * frame["sales"][29] + frame["sales"][32]) / 3)


def test_missing_times_get_rows_and_dates_step_by_the_calendar() -> None:
    weekly = pd.DataFrame({"week": pd.date_range("2024-01-07", periods=30, freq="7D").strftime("%Y-%m-%d"),
                           "visits": np.arange(30.0)}).drop(index=[10, 11])
    windows = make_windows("weekly.csv", weekly, ("visits",), ForecastOptions(time="week"), 4, 0.3)
    # Rule: a missing week becomes a row of missing cells (counted), whose windows are left out
    assert windows.inserted == 2 and windows.plan.unit == "seconds" and windows.plan.step == 7 * 86400
    assert len(windows.series) == 30 and windows.dropped == 2 + 4
    months = pd.Series(pd.to_datetime(["2020-01-01", "2020-02-01", "2020-04-01", "2020-05-01"]))
    years = pd.Series([1990.0, 1991.0, 1993.0])
    # Rule: month starts step in months (30 or 31 days), whole numbers by their smallest gap
    assert regular_step(months, "datetime") == (1.0, "months") and regular_step(years, "number") == (1.0, "number")


def test_the_naive_forecasts_are_scored_on_the_validation_windows() -> None:
    t = np.arange(96)
    frame = pd.DataFrame({"month": t, "sales": 3.0 * t + 10 * np.sin(2 * np.pi * t / 12)})
    ramp = make_windows("s", frame.assign(sales=3.0 * t), ("sales",), ForecastOptions("month", horizon=2), 12, 0.25)
    # Rule: "the last value" misses a ramp of 3 per step by 3 and 6: MAE 4.5, in the target's units
    assert dict((n, m) for n, m, _ in ramp.naive)["last value"] == pytest.approx(4.5)
    seasonal = make_windows("s", frame, ("sales",), ForecastOptions("month", horizon=2, season=12), 12, 0.25)
    names = {n: (mae, rmse) for n, mae, rmse in seasonal.naive}
    # Rule: the seasonal naive forecast is the value one season back: off by the trend's 12 x 3 = 36 exactly
    assert names["seasonal naive (season 12)"] == pytest.approx((36.0, 36.0))


def test_the_served_plan_makes_the_trials_window_from_raw_rows() -> None:
    raw = seasonal_series()
    raw.loc[5, "sales"] = np.nan
    windows = _windows(raw, lookback=24, horizon=3, missing="interpolate")
    plan = SeriesPlan.from_json(windows.plan.to_json())
    for k in (0, 17, len(windows.val_ends) - 1):
        end = windows.val_ends[k]
        # Rule: the raw rows up to a validation window's end give exactly that window
        assert np.array_equal(plan.window(raw.iloc[:end + 1])[0], windows.x_val[k])
    answer = plan.answer(raw, np.arange(3.0))
    assert list(answer.columns) == ["month", "step", "sales"] and str(answer["month"][0].date()) == "2020-01-01"
    with pytest.raises(SeriesError, match=r"'sales' is missing at 2019-11-01 among the latest 24 rows"):
        SeriesPlan.from_json(_windows(raw, lookback=24).plan.to_json()).window(raw.assign(
            sales=raw["sales"].where(raw.index != 358)))


@pytest.mark.parametrize(("rows", "message"), [
    ([3, 1, 2], r"space.yaml: data: .*series.csv: time column 'month' is not sorted \(row 2: 1 comes after 3\); "
                r"sort the rows by month$"),
    ([1, 2, 2], r"time column 'month' repeats 2 \(rows 2 and 3\); keep one row per time"),
])
def test_an_unsorted_or_repeated_time_column_is_one_line_exit_2(tmp_path: Path, rows: list[int], message: str) -> None:
    months = rows + list(range(4, 60))
    pd.DataFrame({"month": months, "sales": np.arange(len(months), dtype=float)}).to_csv(tmp_path / "series.csv",
                                                                                          index=False)
    space = write_space(tmp_path, """
        name: unsorted
        model: mlp
        data: series.csv
        target: sales
        task: forecast
        forecast: {time: month, horizon: 2}
        params:
          lookback: {type: categorical, choices: [4, 8]}
    """)
    store = tmp_path / "store"
    result = invoke_cli("sweep", str(space), "--store", str(store))
    # Rule: one line naming the file, the column and the fix; exit 2 before anything is written
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert __import__("re").search(message, result.stderr.strip()), result.stderr
    assert not store.exists()


def test_forecast_settings_act_under_task_forecast_only(tmp_path: Path) -> None:
    import kerasweep

    with pytest.raises(kerasweep.UserInputError, match=r"params.lookback: applies to task forecast"):
        kerasweep.Space.model_validate({"name": "s", "model": "mlp", "data": "iris",
                                        "params": {"lookback": {"type": "int", "low": 2, "high": 8}}})
    with pytest.raises(kerasweep.UserInputError, match=r"forecast: task forecast needs forecast: \{time:"):
        kerasweep.Space.model_validate({"name": "s", "model": "mlp", "data": "x.csv", "task": "forecast",
                                        "params": {"lookback": {"type": "int", "low": 2, "high": 8}}})


@pytest.mark.slow  # a sweep, a production training and a fresh interpreter: about two minutes
def test_the_shipped_forecast_beats_seasonal_naive_and_serves_what_it_scored(tmp_path: Path) -> None:
    store = tmp_path / "store"
    swept = invoke_cli("sweep", "forecast", "--trials", "3", "--epochs", "30", "--store", str(store))
    assert swept.returncode == 0, swept.stderr + swept.stdout
    text = " ".join(swept.stdout.split())
    assert "naive forecast seasonal naive (season 12): mae 1.766" in text
    parents, runs = sweep_runs(mlflow_client(store), "forecast", "forecast")
    baseline = parents[0].data.metrics["baseline_val_mae"]
    best = min(r.data.metrics["objective"] for r in runs if "objective" in r.data.metrics)
    # Rule: on the shipped seasonal series the best trial beats the seasonal naive forecast
    assert best < baseline == pytest.approx(1.7662, abs=1e-3)
    complete = [r for r in runs if "objective" in r.data.metrics]
    # Rule: the error per step ahead is logged on each complete trial
    assert all({"val_mae_step_1", "val_mae_step_2", "val_mae_step_3"} <= set(r.data.metrics) for r in complete)
    trained = invoke_cli("train", str(store / "exports" / "forecast.yaml"), "--store", str(store))
    assert trained.returncode == 0, trained.stderr
    reported = float(" ".join(trained.stdout.split()).split("Best val_mae ")[1].split()[0])
    code = f"""
import numpy as np, mlflow
from kerasweep.trainers.forecast import seasonal_series
mlflow.set_tracking_uri("sqlite:///{store / 'mlflow.db'}")
model = mlflow.pyfunc.load_model("models:/forecast/1")
raw = seasonal_series()
errors = [np.abs(model.predict(raw.iloc[:end + 1])["sales"].to_numpy() - raw["sales"].iloc[end + 1:end + 4].to_numpy())
          for end in range(287, 357)]
print(repr(float(np.mean(errors))))
"""
    ran = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**__import__("os").environ, **QUIET_ENV},
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    # Rule: in a fresh process, the registered model given the raw rows before each validation window
    # reproduces the val_mae training reported
    assert float(ran.stdout.strip().splitlines()[-1]) == pytest.approx(reported, abs=5e-5)


def test_split_ordered_keeps_the_rows_order_and_a_random_split_of_sequences_is_warned_of(tmp_path: Path) -> None:
    from kerasweep.search.data_report import data_report
    from kerasweep.search.space import load_space
    from kerasweep.trainers.data import load_arrays

    series = seasonal_series(130)["sales"].to_numpy()
    x = np.stack([series[i:i + 10] for i in range(120)])[..., None]  # windows made by hand, as users do
    np.savez(tmp_path / "windows.npz", x=x, y=series[10:130])
    ordered = load_arrays(str(tmp_path / "windows.npz"), 0.25, 0, "regression", split="ordered")
    # Rule: split: ordered validates on the last rows, in the file's order, with the sequences' shape kept
    assert np.array_equal(ordered.x_val, x[90:].astype("float32")) and ordered.x_train.shape == (90, 10, 1)
    space = write_space(tmp_path, """
        name: windows
        model: rnn
        data: windows.npz
        task: regression
        params:
          units: {type: categorical, choices: [8]}
    """)
    warned = data_report(load_space(space)).warnings
    # Rule: sequences split at random are warned of, with the fix
    assert any("set split: ordered" in w for w in warned), warned
    quiet = write_space(tmp_path, space.read_text() + "split: ordered\n", "ordered.yaml")
    assert not any("split: ordered" in w for w in data_report(load_space(quiet)).warnings)


@pytest.mark.slow  # a short forecast sweep per engine: about a minute each
@pytest.mark.parametrize("engine", ["ray", "keras-tuner"])
def test_a_forecast_sweeps_on_every_engine(engine: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    swept = run_cli("sweep", "forecast", "--engine", engine, "--sampler", "random", "--trials", "2", "--epochs", "4",
                    "--store", str(store))
    assert swept.returncode == 0, swept.stderr + swept.stdout
    parents, runs = sweep_runs(mlflow_client(store), "forecast", "forecast")
    # Rule: the same windows, baseline and per-step errors whichever engine searches
    assert parents[0].data.metrics["baseline_val_mae"] == pytest.approx(1.7662, abs=1e-3)
    assert [r for r in runs if {"objective", "val_mae_step_3"} <= set(r.data.metrics)], [r.data.metrics for r in runs]
