"""Define-by-run builders: a model function of `trial` (Optuna's API) or of `hp` (KerasTuner's API).

Such a builder declares its own space by running: each `trial.suggest_int(...)` or `hp.Int(...)` asks
for one value. `Suggestions` answers both APIs through one `ask` function, so the trainer stays free of
any search library: an engine hands in an `ask` that samples (Optuna's live trial), production training
a replay of the values a trial was given (as Optuna's `FixedTrial` does). The values asked so far are
a mapping, logged and exported as the builder named them.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

#: kind ("int", "float", "categorical"), name, and the declared range: low, high, step, log, choices
Ask = Callable[[str, str, dict[str, Any]], Any]


class Suggestions(Mapping[str, Any]):
    """Optuna's `trial.suggest_*` and KerasTuner's `hp.Int/Float/Choice/Boolean/Fixed` over one `ask`."""

    def __init__(self, ask: Ask) -> None:
        self._ask, self._values, self._inactive = ask, {}, 0

    @classmethod
    def replay(cls, values: Mapping[str, Any]) -> Suggestions:
        """Answer every question with the value a trial was given (production training, exports)."""

        def ask(kind: str, name: str, declared: dict[str, Any]) -> Any:
            if name not in values:
                raise KeyError(f"the builder asks for {name!r}, which the config does not hold; it holds "
                               f"{', '.join(sorted(values)) or 'nothing'}")
            return values[name]

        return cls(ask)

    # --- the mapping of values asked so far -----------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def values(self) -> dict[str, Any]:
        """KerasTuner's `hp.values`: every value asked so far."""
        return dict(self._values)

    def _get(self, kind: str, name: str, **declared: Any) -> Any:
        if self._inactive:  # inside a conditional scope whose condition does not hold: not sampled
            return declared.get("default")
        if name not in self._values:
            self._values[name] = self._ask(kind, name, declared)
        return self._values[name]

    # --- Optuna's trial API ---------------------------------------------------------------------
    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return int(self._get("int", name, low=low, high=high, step=step, log=log))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return float(self._get("float", name, low=low, high=high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._get("categorical", name, choices=list(choices))

    # --- KerasTuner's HyperParameters API -------------------------------------------------------
    def Int(self, name: str, min_value: int, max_value: int, step: int | None = None,  # KerasTuner's names
            sampling: str = "linear", default: int | None = None, **scope: Any) -> int | None:
        with self._scope(**scope):
            found = self._get("int", name, low=min_value, high=max_value, step=step or 1, log=sampling == "log",
                              default=default)
        return None if found is None else int(found)

    def Float(self, name: str, min_value: float, max_value: float, step: float | None = None,
              sampling: str = "linear", default: float | None = None, **scope: Any) -> float | None:
        with self._scope(**scope):
            found = self._get("float", name, low=min_value, high=max_value, step=step, log=sampling == "log",
                              default=default)
        return None if found is None else float(found)

    def Choice(self, name: str, values: Sequence[Any], ordered: bool | None = None,
               default: Any = None, **scope: Any) -> Any:
        with self._scope(**scope):
            return self._get("categorical", name, choices=list(values), default=default)

    def Boolean(self, name: str, default: bool = False, **scope: Any) -> bool:
        with self._scope(**scope):
            return bool(self._get("categorical", name, choices=[False, True], default=default))

    def Fixed(self, name: str, value: Any, **scope: Any) -> Any:
        with self._scope(**scope):
            if not self._inactive:
                self._values[name] = value
        return value

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Values asked inside exist only when the parent took one of `parent_values` (KerasTuner's rule)."""
        with self._scope(parent_name=parent_name, parent_values=parent_values):
            yield

    @contextlib.contextmanager
    def _scope(self, parent_name: str | None = None, parent_values: Any = None) -> Iterator[None]:
        wanted = parent_values if isinstance(parent_values, (list, tuple, set)) else [parent_values]
        inactive = parent_name is not None and self._values.get(parent_name) not in wanted
        self._inactive += inactive
        try:
            yield
        finally:
            self._inactive -= inactive


def builder_style(builder: Any) -> str:
    """How a user's builder takes its values: "values" (values, input_shape, n_outputs), "trial" (Optuna's
    define-by-run), "hp" (KerasTuner's, a function of `hp` or a `HyperModel`); ValueError for none."""
    if hasattr(builder, "build") and callable(builder.build) and not inspect.isfunction(builder):
        return "hp"  # a KerasTuner HyperModel (class or instance)
    try:
        parameters = list(inspect.signature(builder).parameters.values())
    except (TypeError, ValueError):
        raise ValueError("the model builder's signature cannot be read") from None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    if len(positional) == 1 and positional[0].name in ("trial", "hp"):
        return positional[0].name
    if len(positional) >= 3:
        return "values"
    names = ", ".join(p.name for p in parameters) or "no parameters"
    raise ValueError(f"the model builder takes ({names}); expected one of: (values, input_shape, n_outputs), "
                     "(trial) as in Optuna, (hp) as in KerasTuner, or a KerasTuner HyperModel")
