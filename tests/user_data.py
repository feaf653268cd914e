"""Data functions a space names as `data: tests.user_data:<function>` (the user's own loading code)."""

from __future__ import annotations

from typing import Any


def wine() -> dict[str, Any]:
    """A mapping: features with their column names, labels as text."""
    from sklearn.datasets import load_wine

    bunch = load_wine()
    return {"x": bunch.data, "y": [f"cultivar-{c}" for c in bunch.target], "features": bunch.feature_names}


def pairs() -> tuple[Any, Any]:
    """A plain (x, y) pair."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    return bunch.data, bunch.target


def wrong() -> str:
    return "not arrays"
