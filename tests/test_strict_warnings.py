"""`make test-strict` (issue 28): a library's deprecation of kerasweep's own calls is an error there, and
only there; a library's warning about its own internals is not kerasweep's to fail on."""

from __future__ import annotations

import warnings

import pytest

from kerasweep.search.quiet import STRICT_ENV, strict_warnings


def _warn_from(module: str, category: type[Warning]) -> None:
    exec(compile("import warnings\nwarnings.warn('old call', category)", module, "exec"),  # noqa: S102
         {"__name__": module, "category": category})


@pytest.mark.parametrize("category", [DeprecationWarning, FutureWarning])
def test_strict_mode_fails_on_kerasweep_calls_only(category: type[Warning], monkeypatch) -> None:
    monkeypatch.setenv(STRICT_ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strict_warnings()
        # Rule: attributed to kerasweep's code, the warning is an error
        with pytest.raises(category):
            _warn_from("kerasweep.search.engines.optuna", category)
        _warn_from("optuna.storages._rdb", category)  # the library's own business: not raised


def test_without_strict_mode_nothing_changes(monkeypatch) -> None:
    monkeypatch.delenv(STRICT_ENV, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strict_warnings()
        _warn_from("kerasweep.search.sweep", DeprecationWarning)  # Rule: ignored as before
