"""kerasweep: hyperparameter sweeps for Keras models; one space file, Optuna / Ray Tune / KerasTuner, MLflow.

The repository's search/ and trainers/ folders install as `kerasweep.search` and `kerasweep.trainers`;
what a user calls is named here. Names load on first use (PEP 562), so `import kerasweep.trainers` for
production training alone pulls in nothing of the search.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_PUBLIC = {
    "KerasweepError": "kerasweep.search.errors",
    "SweepAborted": "kerasweep.search.errors",
    "TrialFailed": "kerasweep.search.errors",
    "TrialPruned": "kerasweep.search.errors",
    "UserInputError": "kerasweep.search.errors",
    "SweepResult": "kerasweep.search.results",
    "TrialResult": "kerasweep.search.results",
    "TrialState": "kerasweep.search.results",
    "Space": "kerasweep.search.space",
    "SpaceProblems": "kerasweep.search.space",
    "load_space": "kerasweep.search.space",
    "sweep": "kerasweep.search.api",
    "status": "kerasweep.search.api",
    "export": "kerasweep.search.api",
    "train": "kerasweep.search.api",
    "load_model": "kerasweep.search.api",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'kerasweep' has no attribute {name!r}; public names: {', '.join(__all__)}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return __all__
