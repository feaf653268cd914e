"""What a user adds to Keras `fit`: class weights by class name, shuffling, and their own callbacks.

A space's `fit:` and `callbacks:` reach every trial and, through the export, production training, so
the model production trains is weighted and called back exactly as the winning trial was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


class FitOptionError(ValueError):
    """A `fit:` or `callbacks:` value that cannot act on this data; the message names the field."""


def class_weights(weights: str | Mapping[Any, float] | None, data: Any) -> dict[int, float] | None:
    """`fit.class_weight` as Keras takes it (class index -> weight) for `data`'s classes: by the names the
    data gives them (text or numbers), or "balanced" (n / (classes x count) on the training part)."""
    if weights is None:
        return None
    if weights == "balanced":
        counts = np.asarray(data.class_counts(), dtype="float64")
        return {i: float(counts.sum() / (len(counts) * c)) for i, c in enumerate(counts)}
    names = [str(c) for c in data.classes]
    unknown = [str(k) for k in weights if str(k) not in names]
    if unknown:
        raise FitOptionError(f"fit.class_weight: no class {', '.join(map(repr, unknown))} in the data; its classes are "
                             f"{', '.join(names)}")
    given = {names.index(str(k)): float(w) for k, w in weights.items()}
    return {i: given.get(i, 1.0) for i in range(len(names))}  # a class not named keeps weight 1


def user_callbacks(ref: str | None) -> list[Any]:
    """Fresh callbacks from the user's `package.module:function` (called once per training)."""
    if ref is None:
        return []
    import keras

    from kerasweep.trainers.user_code import import_object

    try:
        made = import_object(ref)()
    except (ImportError, AttributeError) as exc:
        raise FitOptionError(f"callbacks: cannot load {ref!r} ({exc}); name a function as package.module:function "
                             "importable from the project folder") from None
    made = list(made) if isinstance(made, (list, tuple)) else [made]
    wrong = [type(c).__name__ for c in made if not isinstance(c, keras.callbacks.Callback)]
    if wrong:
        raise FitOptionError(f"callbacks: {ref} returned {', '.join(wrong)}; expected a list of keras.callbacks.Callback")
    return made
