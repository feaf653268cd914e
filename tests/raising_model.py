"""A model builder that always raises: every trial fails the same way (the failure-streak contract)."""

from __future__ import annotations

from typing import Any


def build(values: Any, input_shape: tuple[int, ...], n_outputs: int) -> Any:
    raise ValueError("this builder always fails")
