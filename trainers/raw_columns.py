"""A table's raw columns -> the numbers a network takes: roles decided once, fitted on the training rows.

A CSV as people download it holds text categories, booleans, missing cells, an index column and dates.
`infer_roles` decides each column's role (docs/tasks.md, "Tabular data", states the rules), `fit_plan` learns
what the training rows say (medians, vocabularies), and `ColumnPlan.encode` turns any raw rows into one
float32 matrix: the same function for the trial, for production training and for the served model.

This file imports only NumPy and pandas: MLflow ships it with every registered model (`code_paths`), so
a served model encodes a raw row exactly as the trial did, with no kerasweep installed. (Keras'
`StringLookup` and `FeatureSpace` would do this inside the model, but they run on TensorFlow only, and
kerasweep trains on JAX and PyTorch too; the scaling after this step is a Keras layer in the model.)
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Every role a column can take; `ignore` is the space file's way to leave one out.
ROLES = ("numeric", "categorical", "date", "identifier", "ignore")
FEW_VALUES = 10  # an integer column with 3 to this many distinct values is categorical (a code, a year)
MAX_CATEGORIES = 50  # the most frequent text values kept per column; rarer ones share the "other" slot
IDENTIFIER_NAME = re.compile(r"unnamed: ?\d+|index|id|.*[_ ]id", re.IGNORECASE)  # pandas' index, id, *_id
CAMEL_ID = re.compile(r".*[a-z](Id|ID)")  # customerId, userID
DATE_SHARE = 0.95  # a text column is a date when at least this share of its cells parse as ISO dates
MISSING, OTHER = "<missing>", "<other>"  # a categorical column's slots for an empty cell and an unseen value
DATE_PARTS = ("year", "month", "day", "weekday")


class ColumnError(ValueError):
    """Raw rows that cannot be encoded (a column missing); the message names the column."""


@dataclass(frozen=True)
class Column:
    """One raw column's role, why it has it, and what the training rows taught about it."""

    name: str
    role: str
    reason: str
    fill: tuple[float, ...] = ()  # numeric and date: the training median of each number it becomes
    indicator: bool = False  # a 0/1 "was missing" feature beside it (its training rows had missing cells)
    vocabulary: tuple[str, ...] = ()  # categorical: known values, most frequent first
    date_format: str | None = None  # date: "iso" or "yyyymmdd"

    def widths(self) -> list[str]:
        """The names of the features this column becomes (none for a left-out column)."""
        if self.role == "numeric":
            return [self.name] + ([f"{self.name}_missing"] if self.indicator else [])
        if self.role == "date":
            return [f"{self.name}_{part}" for part in DATE_PARTS] + ([f"{self.name}_missing"] if self.indicator else [])
        if self.role == "categorical":
            return [f"{self.name}={value}" for value in (*self.vocabulary, MISSING, OTHER)]
        return []


@dataclass(frozen=True)
class ColumnPlan:
    """Every column of a table with its role, fitted on training rows; encodes raw rows the same way always."""

    columns: tuple[Column, ...]

    @property
    def used(self) -> list[str]:
        """The raw columns a row must hold, in the file's order."""
        return [c.name for c in self.columns if c.role in ("numeric", "categorical", "date")]

    @property
    def feature_names(self) -> list[str]:
        return [name for column in self.columns for name in column.widths()]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw rows (text, ints, None, NaN, unseen values) as the float32 matrix the network takes."""
        absent = [name for name in self.used if name not in frame.columns]
        if absent:
            raise ColumnError(f"rows lack column(s) {', '.join(absent)}; the model takes {', '.join(self.used)}")
        parts = [_encode(column, frame[column.name]) for column in self.columns if column.widths()]
        if not parts:
            return np.zeros((len(frame), 0), dtype="float32")
        return np.concatenate(parts, axis=1).astype("float32")

    def to_json(self) -> str:
        return json.dumps({"columns": [asdict(c) for c in self.columns]})

    @classmethod
    def from_json(cls, text: str) -> ColumnPlan:
        document = json.loads(text)
        columns = tuple(Column(**{**c, "fill": tuple(c["fill"]), "vocabulary": tuple(c["vocabulary"])})
                        for c in document["columns"])
        return cls(columns)

    def notices(self, frame: pd.DataFrame) -> list[str]:
        """What a person should know before trusting a result on `frame` (the whole table, in file order):
        each identifier left out, and each kept number that grows row by row (a row number, a time), which
        gives the order away where the file is sorted by its target."""
        found = [f"column {c.name} is left out: an identifier ({c.reason}); set columns: {{{c.name}: numeric}} (or "
                 "categorical) if it is a real feature" for c in self.columns if c.role == "identifier"]
        for column in self.columns:
            if column.role != "numeric" or len(frame) <= 20:
                continue
            values = pd.to_numeric(frame[column.name], errors="coerce")
            if values.notna().all() and (values.is_monotonic_increasing or values.is_monotonic_decreasing) \
                    and values.nunique() == len(values):
                found.append(f"column {column.name} grows row by row (a row number, a time?): where the file is "
                             f"sorted, it gives the order away; set columns: {{{column.name}: ignore}} unless it is "
                             "a real feature")
        return found

    def describe(self) -> list[str]:
        """One line per role, for the sweep's first lines and the parent run's `data/columns.txt`."""
        lines = []
        for role in ROLES:
            named = [c for c in self.columns if c.role == role]
            if named:
                shown = ", ".join(f"{c.name} ({c.reason})" if c.reason else c.name for c in named)
                lines.append(f"{role}: {shown}")
        return lines


def infer_roles(frame: pd.DataFrame, overrides: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """Each column's role and the reason, before any training; `overrides` (the space's `columns:`) win."""
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(map(str, frame.columns)))
    if unknown:
        raise ColumnError(f"columns: {', '.join(map(repr, unknown))} not in the data; its columns are "
                          f"{', '.join(map(str, frame.columns))}")
    return {str(name): (overrides[str(name)], "set in the space file") if str(name) in overrides
            else _infer(str(name), frame[name]) for name in frame.columns}


def _infer(name: str, values: pd.Series) -> tuple[str, str]:
    present = values.dropna()
    distinct = present.nunique()
    if IDENTIFIER_NAME.fullmatch(name) or CAMEL_ID.fullmatch(name):
        return "identifier", "named like an index or id"
    if pd.api.types.is_bool_dtype(values) or set(present.unique().tolist()) <= {True, False} and distinct:
        return "categorical", "true/false"
    if pd.api.types.is_numeric_dtype(values):
        whole = bool(len(present)) and bool(np.all(np.mod(present.to_numpy(dtype="float64"), 1) == 0))
        if whole and len(present) > 20 and distinct == len(values) and present.max() - present.min() + 1 == len(values):
            return "identifier", "a row number: unique per row, consecutive"
        if whole and _yyyymmdd(present):
            return "date", "whole numbers that read as yyyymmdd dates"
        if whole and 2 < distinct <= FEW_VALUES:  # two values: a flag, as informative as one number
            return "categorical", f"{distinct} distinct whole numbers"
        return "numeric", ""
    text = present.astype(str)
    if len(text) and _iso_dates(text).notna().mean() >= DATE_SHARE:
        return "date", "ISO dates"
    if len(text) > 20 and distinct == len(values):
        return "identifier", "text unique per row"
    return "categorical", "text"


def _yyyymmdd(present: pd.Series) -> bool:
    numbers = present.to_numpy(dtype="float64")
    if not len(numbers) or numbers.min() < 18000101 or numbers.max() > 22001231:
        return False
    parsed = pd.to_datetime(present.astype("int64").astype(str), format="%Y%m%d", errors="coerce")
    return bool(parsed.notna().all())


def _iso_dates(text: pd.Series) -> pd.Series:
    looks = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}([ T][\d:.]+)?")
    parsed = pd.to_datetime(text.where(looks), format="ISO8601", errors="coerce")
    return parsed


def fit_plan(frame: pd.DataFrame, roles: dict[str, tuple[str, str]]) -> ColumnPlan:
    """Learn each column's medians or vocabulary from the training rows only (never the validation rows)."""
    columns = []
    for name, (role, reason) in roles.items():
        values = frame[name]
        missing = bool(_missing(values).any())
        if role == "numeric":
            numbers = pd.to_numeric(values, errors="coerce")
            columns.append(Column(name, role, reason, fill=(_median(numbers),), indicator=missing))
        elif role == "date":
            fmt = "yyyymmdd" if pd.api.types.is_numeric_dtype(values) else "iso"
            parts = _date_parts(values, fmt)
            columns.append(Column(name, role, reason, fill=tuple(_median(parts[:, i]) for i in range(parts.shape[1])),
                                  indicator=missing, date_format=fmt))
        elif role == "categorical":
            counts = _category_text(values[~_missing(values)]).value_counts(sort=True)
            vocabulary = tuple(sorted(counts.index[:MAX_CATEGORIES].tolist(), key=lambda v: (-counts[v], v)))
            columns.append(Column(name, role, reason, vocabulary=vocabulary))
        else:
            columns.append(Column(name, role, reason))
    return ColumnPlan(tuple(columns))


def _missing(values: pd.Series) -> pd.Series:
    """Missing cells: NaN, None and empty text (a CSV's `NA` and empty cells are read as NaN)."""
    blank = values.astype(str).str.strip().eq("") if values.dtype == object else False
    return values.isna() | blank


def _median(numbers: Any) -> float:
    finite = np.asarray(numbers, dtype="float64")
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if len(finite) else 0.0


def _category_text(values: pd.Series) -> pd.Series:
    """One text form per value, whatever type it arrives as: 3, 3.0 and "3" are the same category."""
    def text(value: Any) -> str:
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value))
        if isinstance(value, (int, np.integer)) or isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value).strip()

    return values.map(text)


def _date_parts(values: pd.Series, fmt: str | None) -> np.ndarray:
    present = values.where(~_missing(values))
    if fmt == "yyyymmdd":
        numbers = pd.to_numeric(present, errors="coerce")
        text = numbers.map(lambda v: "" if pd.isna(v) else str(int(v)))
        dates = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    else:
        dates = _iso_dates(present.astype(str))
    parts = [dates.dt.year, dates.dt.month, dates.dt.day, dates.dt.dayofweek]
    return np.stack([p.to_numpy(dtype="float64", na_value=np.nan) for p in parts], axis=1)


def _encode(column: Column, values: pd.Series) -> np.ndarray:
    values = values.reset_index(drop=True)
    missing = _missing(values).to_numpy()
    if column.role == "categorical":
        slots = {value: i for i, value in enumerate(column.vocabulary)}
        index = np.where(missing, len(slots), [slots.get(v, len(slots) + 1) for v in _category_text(values)])
        out = np.zeros((len(values), len(slots) + 2), dtype="float32")
        out[np.arange(len(values)), index.astype(int)] = 1.0
        return out
    if column.role == "numeric":
        numbers = pd.to_numeric(values.where(~missing), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        unreadable = ~missing & ~np.isfinite(numbers)
        if unreadable.any():
            raise ColumnError(f"column {column.name}: {int(unreadable.sum())} value(s) are not numbers (such as "
                              f"{values[unreadable].iloc[0]!r}); numeric columns hold numbers or missing cells")
        parts = numbers[:, None]
    else:
        parts = _date_parts(values, column.date_format)
    gaps = ~np.isfinite(parts)
    parts = np.where(gaps, np.asarray(column.fill)[None, :], parts)
    if column.indicator:
        parts = np.concatenate([parts, gaps.any(axis=1, keepdims=True)], axis=1)
    return parts.astype("float32")
