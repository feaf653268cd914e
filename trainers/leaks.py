"""Features that answer too well: one column alone that predicts the validation target almost perfectly.

A leak shows as a result: an index column of a file sorted by its target lifted val_accuracy from 0.73
to 0.99. Before training, each raw column alone is given a small decision tree (scikit-learn), fitted on
the training rows and scored on the validation rows; a column that nearly removes the error the trivial
predictor makes is named in a warning. A warning, not an error: sometimes one column is the answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NEAR_PERFECT = 0.99  # accuracy (classes) or R² (regression) of one column alone
MAX_COLUMNS = 200  # columns checked; a wider table is checked on its first ones (seconds, not minutes)
MAX_ROWS = 20_000  # rows each tree trains on


def leak_warnings(data: Any) -> list[str]:
    """One line per column of a table (`trainers.data.Dataset`) that alone predicts the validation target."""
    if data.streams is not None or data.x_train.ndim != 2 or data.task == "multilabel":
        return []
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    groups = _column_groups(data)
    y_train, y_val = np.asarray(data.y_train)[:MAX_ROWS], np.asarray(data.y_val)
    found = []
    for name, columns in list(groups.items())[:MAX_COLUMNS]:
        x_train, x_val = data.x_train[:MAX_ROWS][:, columns], data.x_val[:, columns]
        if data.task == "regression":
            tree = DecisionTreeRegressor(max_depth=8, random_state=0).fit(x_train, y_train)
            score = float(tree.score(x_val, y_val))
            if score >= NEAR_PERFECT:
                found.append(f"column {name} alone predicts the validation target with R² {score:.3f}: a leak? "
                             f"(an id, a copy of the target, a value known only afterwards); if so, set columns: "
                             f"{{{name}: ignore}}")
            continue
        tree = DecisionTreeClassifier(max_depth=8, random_state=0).fit(x_train, y_train.astype(int))
        accuracy = float(np.mean(tree.predict(x_val) == y_val.astype(int)))
        majority = float(np.max(np.bincount(y_val.astype(int))) / len(y_val))
        if accuracy >= NEAR_PERFECT and 1 - accuracy <= 0.1 * (1 - majority):
            found.append(f"column {name} alone predicts the validation labels with accuracy {accuracy:.3f} (the "
                         f"majority class alone: {majority:.3f}): a leak? (an id of a sorted file, a copy of the label, "
                         f"a value known only afterwards); if so, set columns: {{{name}: ignore}}")
    return found


def _column_groups(data: Any) -> dict[str, list[int]]:
    """Each raw column's features in the encoded matrix (a table's plan), else one feature per column."""
    if data.plan is None:
        names = data.features or tuple(f"x{i}" for i in range(data.x_train.shape[1]))
        return {name: [i] for i, name in enumerate(names)}
    groups, start = {}, 0
    for column in data.plan.columns:
        width = len(column.widths())
        if width:
            groups[column.name] = list(range(start, start + width))
        start += width
    return groups
