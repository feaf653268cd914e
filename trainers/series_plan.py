"""A forecast's plan: how raw recent rows of a series become the one window a model reads, and the times of
what it answers.

Training (`trainers/forecast.py`) and the served model (`search/served_model.py`) both go through
`SeriesPlan.frame` and `SeriesPlan.window`, so a registered model forecasts from the raw rows a user has
(the time column included, gaps in time filled by the same rule) exactly as the trial was scored.
NumPy and pandas only: MLflow stores this file with the model (`code_paths`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

MISSING_POLICIES = ("drop_windows", "interpolate")


class SeriesError(ValueError):
    """The series cannot be read as it is; the message names the column and the fix."""


@dataclass(frozen=True)
class SeriesPlan:
    """What a window is: the time column, the columns read (targets first, then covariates), how many
    samples back (`lookback`, every `sampling_rate` rows), how many steps ahead, and the series' step."""

    time: str
    targets: tuple[str, ...]
    features: tuple[str, ...]  # the columns a window holds, in order: the targets, then the covariates
    lookback: int
    horizon: int
    sampling_rate: int = 1
    missing: str = "drop_windows"
    kind: str = "number"  # the time column: "number" (years, steps) or "datetime"
    step: float | None = None  # the regular step, in `unit`s; None: irregular, the rows kept as given
    unit: str = "number"  # what `step` counts: "number" (the column's own), "seconds" or "months" (dates)

    @property
    def span(self) -> int:
        """Rows from a window's first input row to its last."""
        return (self.lookback - 1) * self.sampling_rate + 1

    def every(self) -> str:
        """The step in words: 1, 7 days, 1 hour(s), 3 month(s)."""
        if self.unit == "months":
            return f"{self.step:g} month(s)"
        if self.unit == "seconds":
            for size, word in ((86400, "day(s)"), (3600, "hour(s)"), (60, "minute(s)")):
                if self.step % size == 0:
                    return f"{self.step / size:g} {word}"
            return f"{self.step:g} second(s)"
        return f"{self.step:g}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SeriesPlan:
        found = json.loads(text)
        return cls(**{**found, "targets": tuple(found["targets"]), "features": tuple(found["features"])})

    def times(self, values: Any, where: str) -> pd.Series:
        """The time column as numbers or datetimes, refused when unsorted or repeated (with the row)."""
        series = pd.Series(values).reset_index(drop=True)
        parsed = pd.to_datetime(series, errors="coerce") if self.kind == "datetime" else \
            pd.to_numeric(series, errors="coerce")
        bad = parsed.isna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise SeriesError(f"{where}: time column {self.time!r}: row {row + 1} ({series[row]!r}) is not a "
                              f"{'date' if self.kind == 'datetime' else 'number'}; every row needs its time")
        steps = parsed.diff().iloc[1:]
        back = steps.lt(pd.Timedelta(0) if self.kind == "datetime" else 0).to_numpy()
        if back.any():
            row = int(back.argmax()) + 1
            raise SeriesError(f"{where}: time column {self.time!r} is not sorted (row {row + 1}: {series[row]} comes "
                              f"after {series[row - 1]}); sort the rows by {self.time}")
        repeated = steps.eq(pd.Timedelta(0) if self.kind == "datetime" else 0).to_numpy()
        if repeated.any():
            row = int(repeated.argmax()) + 1
            raise SeriesError(f"{where}: time column {self.time!r} repeats {series[row]} (rows {row} and {row + 1}); "
                              "keep one row per time (aggregate duplicates first)")
        return parsed

    def positions(self, times: pd.Series) -> np.ndarray:
        """Each time as a count of steps since the first (float: whole numbers on a regular grid)."""
        return (counted(times, self.unit) - counted(times, self.unit)[0]) / self.step

    def grid_times(self, start: Any, count: int) -> pd.Series:
        """The times of `count` steps from `start`."""
        steps = np.arange(count) * self.step
        if self.unit == "months":
            return pd.Series([pd.Timestamp(start) + pd.DateOffset(months=int(k)) for k in steps])
        if self.unit == "seconds":
            return pd.Series(pd.Timestamp(start) + pd.to_timedelta(steps, unit="s"))
        return pd.Series(float(start) + steps)

    def frame(self, raw: Any, where: str) -> tuple[pd.DataFrame, int]:
        """The rows on the series' regular grid: a row for every step (a missing time gets a row of missing
        cells), the features as float64, the policy's interpolation applied; returns it and how many rows
        were inserted. The time column is kept as parsed."""
        frame = pd.DataFrame(raw)
        missing = [c for c in (self.time, *self.features) if c not in frame.columns]
        if missing:
            raise SeriesError(f"{where}: no column {', '.join(map(repr, missing))}; the series has "
                              f"{', '.join(map(str, frame.columns))}")
        times = self.times(frame[self.time].to_numpy(), where)
        values = pd.DataFrame({c: pd.to_numeric(frame[c].reset_index(drop=True), errors="coerce") for c in self.features})
        text = [c for c in self.features if values[c].isna().sum() > pd.Series(frame[c]).isna().sum()]
        if text:
            raise SeriesError(f"{where}: column {text[0]!r} holds text; a forecast reads numbers (leave it out with "
                              "forecast: {covariates: [...]} naming the numeric columns to use)")
        inserted = 0
        if self.step:
            position = np.rint(self.positions(times)).astype(int)
            grid = pd.DataFrame(np.nan, index=range(int(position[-1]) + 1), columns=list(self.features))
            grid.iloc[position] = values.to_numpy()
            inserted = len(grid) - len(values)
            values, times = grid, self.grid_times(times.iloc[0], len(grid))
        if self.missing == "interpolate":
            values = values.interpolate(limit_direction="both")
        values.insert(0, self.time, times.to_numpy())
        return values, inserted

    def window(self, raw: Any, where: str = "input") -> np.ndarray:
        """The model's input for the next `horizon` steps after the latest of `raw`'s rows: (1, lookback,
        features) float32. At least `span` rows on the grid are needed, and no missing cell in them."""
        return self._window(self.frame(raw, where)[0], where)

    def _window(self, frame: pd.DataFrame, where: str) -> np.ndarray:
        if len(frame) < self.span:
            raise SeriesError(f"{where}: {len(frame)} row(s) on the series' time grid; a forecast reads the latest "
                              f"{self.span} (lookback {self.lookback} x sampling rate {self.sampling_rate})")
        recent = frame.iloc[len(frame) - self.span::self.sampling_rate]
        cells = recent[list(self.features)].to_numpy(dtype="float64")
        if np.isnan(cells).any():
            row, column = np.argwhere(np.isnan(cells))[0]
            raise SeriesError(f"{where}: {self.features[column]!r} is missing at {shown(recent[self.time].iloc[row])} among "
                              f"the latest {self.span} rows; send rows without gaps there (or train with "
                              "forecast: {missing: interpolate})")
        return cells[None].astype("float32")

    def next_times(self, last: Any) -> list[Any] | None:
        """The times of the `horizon` steps after `last`; None when the series has no regular step."""
        if not self.step:
            return None
        return list(self.grid_times(last, self.horizon + 1)[1:])

    def forecast(self, raw: Any, predict: Any) -> pd.DataFrame:
        """`predict` (window -> one row of outputs) on the latest rows of `raw`, answered as a table; the rows
        are put on the time grid once."""
        frame, _ = self.frame(raw, "input")
        return self._answer(frame, predict(self._window(frame, "input")))

    def answer(self, raw: Any, predicted: np.ndarray) -> pd.DataFrame:
        """One forecast as a table: a row per step ahead, the time (where regular) and each target."""
        return self._answer(self.frame(raw, "input")[0], predicted)

    def _answer(self, frame: pd.DataFrame, predicted: np.ndarray) -> pd.DataFrame:
        steps = np.asarray(predicted, dtype="float64").reshape(self.horizon, len(self.targets))
        out = pd.DataFrame(steps, columns=list(self.targets))
        out.insert(0, "step", range(1, self.horizon + 1))
        times = self.next_times(frame[self.time].iloc[-1])
        if times is not None:
            out.insert(0, self.time, times)
        return out


def shown(when: Any) -> str:
    """A time as the series would write it: a date without its midnight, a number as it is."""
    if isinstance(when, pd.Timestamp):
        return str(when.date()) if when == when.normalize() else str(when)
    return f"{when:g}" if isinstance(when, float) else str(when)


def counted(times: pd.Series, unit: str) -> np.ndarray:
    """Times as numbers to find and follow a step in: months since year 0, seconds since 1970, or as given."""
    if unit == "months":
        return (times.dt.year * 12 + times.dt.month - 1).to_numpy(dtype="float64")
    if unit == "seconds":
        return (times - pd.Timestamp(0)).dt.total_seconds().to_numpy()
    return times.to_numpy(dtype="float64")


def regular_step(times: pd.Series, kind: str) -> tuple[float | None, str]:
    """The series' step and its unit: the smallest gap between rows when every gap is a whole number of
    it (dates on the same day of the month step in months: monthly, quarterly, yearly); else None."""
    if len(times) < 3:
        return None, "number"
    unit = "number"
    if kind == "datetime":
        same_day = times.dt.day.nunique() == 1 and (times - times.dt.normalize()).nunique() == 1
        unit = "months" if same_day and times.dt.day.iloc[0] <= 28 else "seconds"
    gaps = np.diff(counted(times, unit))
    step = float(gaps.min())
    if step <= 0 or not np.allclose(gaps / step, np.rint(gaps / step), atol=1e-6):
        return None, unit
    return step, unit
