"""Forecasting: a series ordered in time -> windows (`lookback` rows in, the next `horizon` values out), split
so that validation is the last part of the series and no training window's target falls inside it.

Why a split of its own: a random split of windows trains on the years it is scored on, and the score is
no forecast error (a yearly series scored 10.6 split at random, 14.4 on its last 60 years, where the
naive "next year = this year" scores 25). Windows are built here, as arrays, the same on every Keras
backend; `tests/test_forecast.py` checks them against `keras.utils.timeseries_dataset_from_array`.
Gaps (missing cells, missing times) follow the space's policy and are counted; the naive forecasts are
scored on the same validation windows. NumPy and pandas only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kerasweep.trainers.catalog import STEP_ERROR
from kerasweep.trainers.raw_columns import infer_roles
from kerasweep.trainers.series_plan import MISSING_POLICIES, SeriesError, SeriesPlan, regular_step, shown


@dataclass(frozen=True)
class ForecastOptions:
    """The space's `forecast:` block (hashable: the arrays are cached per process)."""

    time: str
    horizon: int = 1
    covariates: tuple[str, ...] | None = None  # None: every other numeric column
    stride: int = 1
    sampling_rate: int = 1
    missing: str = "drop_windows"
    season: int | None = None
    validation_from: str | None = None

    @classmethod
    def of(cls, block: Any) -> ForecastOptions:
        found = dict(block or {})
        if "covariates" in found and found["covariates"] is not None:
            found["covariates"] = tuple(found["covariates"])
        return cls(**found)


@dataclass(frozen=True)
class Windows:
    """A forecast's training and validation windows, raw (the model scales them), and what was done to
    get them: the plan the served model repeats, counts, and the naive forecasts' errors."""

    x_train: np.ndarray  # (windows, lookback, features)
    y_train: np.ndarray  # (windows, horizon x targets), step-major
    x_val: np.ndarray
    y_val: np.ndarray
    plan: SeriesPlan
    series: pd.DataFrame  # the rows on the time grid (time column first), after the missing policy
    val_ends: np.ndarray  # each validation window's last input row in `series`
    train_ends: np.ndarray
    val_start: Any  # the first validation time
    dropped: int  # windows left out because they touch a missing cell
    inserted: int  # rows added for missing times
    naive: tuple[tuple[str, float, float], ...]  # (predictor, MAE, RMSE) on the validation windows
    left_out: tuple[str, ...]  # columns not read, with why

    def describe(self) -> list[str]:
        """What a person should know before trusting a forecast error, in a few lines."""
        p = self.plan
        step = f"step {p.every()}" if p.step else "irregular times"
        lines = [f"series: {len(self.series)} rows by {p.time} ({step}), targets {', '.join(p.targets)}"
                 + (f", covariates {', '.join(p.features[len(p.targets):])}" if len(p.features) > len(p.targets) else ""),
                 f"windows: {len(self.x_train)} training, {len(self.x_val)} validation (lookback {p.lookback}, "
                 f"horizon {p.horizon}); validation from {shown(self.val_start)}, no training target on or after it"]
        lines += [f"naive forecast {name}: mae {mae:.4g}, rmse {rmse:.4g} on the validation windows"
                  for name, mae, rmse in self.naive]
        return lines

    def notices(self) -> list[str]:
        found = list(self.left_out)
        if self.inserted:
            found.append(f"{self.inserted} missing time(s) in the series got a row of missing cells "
                         f"({self.plan.missing})")
        if self.dropped:
            found.append(f"{self.dropped} window(s) left out: they touch a missing cell (missing: drop_windows; "
                         "forecast: {missing: interpolate} fills gaps linearly instead)")
        return found


def make_windows(name: str, frame: pd.DataFrame, targets: tuple[str, ...], options: ForecastOptions, lookback: int,
                 validation_split: float, validation: pd.DataFrame | None = None) -> Windows:
    """Windows of `frame` (and of `validation`, the later rows, when given) for `options`; raises SeriesError
    with the fix when the series cannot give them."""
    if options.missing not in MISSING_POLICIES:
        raise SeriesError(f"{name}: forecast.missing: expected one of {', '.join(MISSING_POLICIES)}, "
                          f"got {options.missing!r}")
    whole = frame if validation is None else pd.concat([frame, validation], ignore_index=True)
    plan, left_out = _plan(name, whole, targets, options, lookback)
    series, inserted = plan.frame(whole, name)
    if validation is not None:  # the validation file's first time
        start = plan.times(validation[plan.time].to_numpy(), name).iloc[0]
        first = int(np.searchsorted(series[plan.time].to_numpy(), np.asarray(start, dtype=series[plan.time].dtype)))
    elif options.validation_from is not None:
        first = _first_at(name, series, plan, options.validation_from)
    else:
        first = len(series) - max(1, int(round(validation_split * len(series))))
    values = series[list(plan.features)].to_numpy("float64")
    target_columns = [plan.features.index(t) for t in targets]
    ends = np.arange(plan.span - 1, len(series) - plan.horizon)  # a window's last input row
    usable = _complete(values, ends, plan)
    train_ends = ends[(ends + plan.horizon < first) & usable][::options.stride]
    val_ends = ends[(ends + 1 >= first) & usable][::options.stride]
    dropped = int(np.sum(~usable & ((ends + plan.horizon < first) | (ends + 1 >= first))))
    if len(train_ends) == 0 or len(val_ends) == 0:
        part = "training" if len(train_ends) == 0 else "validation"
        raise SeriesError(f"{name}: no {part} window: {len(series)} rows, validation from row {first + 1}, windows of "
                          f"{plan.span} rows and {plan.horizon} step(s) ahead; use a shorter lookback or horizon, or "
                          "move the validation start")
    x_train, y_train = _cut(values, train_ends, plan, target_columns)
    x_val, y_val = _cut(values, val_ends, plan, target_columns)
    naive = _naive(values[:, target_columns], val_ends, plan.horizon, options.season)
    return Windows(x_train, y_train, x_val, y_val, plan, series, val_ends, train_ends, series[plan.time].iloc[first],
                   dropped, inserted, naive, tuple(left_out))


def _plan(name: str, frame: pd.DataFrame, targets: tuple[str, ...], options: ForecastOptions,
          lookback: int) -> tuple[SeriesPlan, list[str]]:
    """The columns a window reads and the series' time step."""
    missing = [c for c in (options.time, *targets, *(options.covariates or ())) if c not in frame.columns]
    if missing:
        raise SeriesError(f"{name}: no column {', '.join(map(repr, missing))}; the file has "
                          f"{', '.join(map(str, frame.columns))}")
    if options.time in targets:
        raise SeriesError(f"{name}: forecast.time: {options.time!r} is also the target; name the column of times")
    left_out = []
    if options.covariates is None:  # numbers only: an identifier (pandas' index column) or text is left out
        others = [c for c in frame.columns if c != options.time and c not in targets]
        roles = infer_roles(frame[others]) if others else {}
        covariates = [c for c in others if pd.api.types.is_numeric_dtype(frame[c]) and not _row_number(frame[c])
                      and roles[str(c)][0] not in ("identifier", "ignore")]  # a weekday number stays a number
        skipped = [f"{c} ({'text' if not pd.api.types.is_numeric_dtype(frame[c]) else 'an identifier'})"
                   for c in others if c not in covariates]
        if skipped:
            left_out.append(f"column(s) {', '.join(skipped)} not read as covariates; name the covariates to read "
                            "with forecast: {covariates: [...]}")
    else:
        covariates = list(options.covariates)
    raw = frame[options.time]
    kind = "number" if pd.api.types.is_numeric_dtype(raw) else "datetime"
    draft = SeriesPlan(options.time, targets, (*targets, *covariates), lookback, options.horizon,
                       options.sampling_rate, options.missing, kind)
    step, unit = regular_step(draft.times(raw.to_numpy(), name), kind)
    return SeriesPlan(options.time, targets, (*targets, *covariates), lookback, options.horizon,
                      options.sampling_rate, options.missing, kind, step, unit), left_out


def _row_number(column: pd.Series) -> bool:
    """0, 1, 2, ... (pandas' index column written to a CSV): no covariate."""
    values = column.dropna().to_numpy()
    return len(values) > 2 and np.array_equal(values, np.arange(values[0], values[0] + len(values)))


def _first_at(name: str, series: pd.DataFrame, plan: SeriesPlan, when: str) -> int:
    """The row where `validation_from` begins."""
    try:
        start = pd.Timestamp(when) if plan.kind == "datetime" else float(when)
    except (TypeError, ValueError):
        raise SeriesError(f"{name}: forecast.validation_from: {when!r} is not a "
                          f"{'date' if plan.kind == 'datetime' else 'number'} like the {plan.time} column") from None
    times = series[plan.time]
    index = int(np.searchsorted(times.to_numpy(), np.asarray(start, dtype=times.dtype)))
    if not 0 < index < len(series):
        raise SeriesError(f"{name}: forecast.validation_from: {when} is outside the series "
                          f"({times.iloc[0]} to {times.iloc[-1]})")
    return index


def _complete(values: np.ndarray, ends: np.ndarray, plan: SeriesPlan) -> np.ndarray:
    """Whether each window's input samples and targets are all present."""
    missing = np.isnan(values).any(axis=1)
    inputs = ends[:, None] - np.arange(plan.lookback)[None, ::-1] * plan.sampling_rate
    outputs = ends[:, None] + np.arange(1, plan.horizon + 1)[None, :]
    return ~(missing[inputs].any(axis=1) | missing[outputs].any(axis=1))


def _cut(values: np.ndarray, ends: np.ndarray, plan: SeriesPlan, targets: list[int]) -> tuple[np.ndarray, np.ndarray]:
    inputs = ends[:, None] - np.arange(plan.lookback)[None, ::-1] * plan.sampling_rate
    outputs = ends[:, None] + np.arange(1, plan.horizon + 1)[None, :]
    x = values[inputs].astype("float32")
    y = values[outputs][:, :, targets].reshape(len(ends), -1).astype("float32")  # step-major: step 1's targets first
    return x, y


def _naive(targets: np.ndarray, ends: np.ndarray, horizon: int, season: int | None) -> tuple[tuple[str, float, float], ...]:
    """The last value repeated, and (with `season`) the value one season earlier, on the validation windows:
    MAE and RMSE in the target's units, over every step and target."""
    steps = np.arange(1, horizon + 1)
    truth = targets[ends[:, None] + steps[None, :]]  # (windows, horizon, targets)
    found = [("last value", np.repeat(targets[ends][:, None, :], horizon, axis=1))]
    if season:
        back = ends[:, None] + steps[None, :] - season * np.ceil(steps / season).astype(int)[None, :]
        if back.min() >= 0:
            found.append((f"seasonal naive (season {season})", targets[back]))
    scored = []
    for name, guess in found:
        error = (guess - truth).ravel()
        error = error[~np.isnan(error)]
        scored.append((name, float(np.mean(np.abs(error))), float(np.sqrt(np.mean(error**2)))))
    return tuple(scored)


def step_errors(predicted: np.ndarray, truth: np.ndarray, plan: SeriesPlan) -> dict[str, float]:
    """MAE per step ahead on the validation windows, in the target's units: `val_mae_step_<h>`."""
    error = np.abs(np.asarray(predicted, "float64") - np.asarray(truth, "float64"))
    error = error.reshape(len(error), plan.horizon, len(plan.targets))
    return {f"{STEP_ERROR}{h + 1}": float(error[:, h].mean()) for h in range(plan.horizon)}


def seasonal_series(rows: int = 360, season: int = 12, seed: int = 0) -> pd.DataFrame:
    """A monthly series with a trend, a yearly season and noise, from 1990 (the shipped `forecast` space's):
    what the naive forecasts must be beaten on, made here so that it needs no download."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    value = 50 + 0.08 * t + 10 * np.sin(2 * np.pi * t / season) + 4 * np.cos(4 * np.pi * t / season) \
        + rng.normal(0, 1.5, rows)
    months = pd.date_range("1990-01-01", periods=rows, freq="MS")
    return pd.DataFrame({"month": months.strftime("%Y-%m-%d"), "sales": value.round(2)})


def read_frame(data: Any, name: str) -> pd.DataFrame:
    """A CSV path or a DataFrame (a data function's), as a DataFrame."""
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True)
    try:
        return pd.read_csv(data)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SeriesError(f"{name}: cannot read the series as CSV: {str(exc).splitlines()[0]}") from None
