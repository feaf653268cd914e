"""What a sweep's data is and what its result must beat, said before any training.

`data_report(space)` loads the data as the trials will (cached per process) and answers: how many rows
train and validate, each table column's role, warnings (rows left out, identifiers, leaks, a rare class)
and the baseline, the trivial predictor's score for the objective on the same validation rows. The CLI
prints it; `run_sweep` logs it on the parent run (`data/report.txt`, metric `baseline_<metric>`, tags).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kerasweep.search.space import Space
from kerasweep.trainers.baselines import Baseline, baseline

RARE_SHARE = 0.10  # a class below this share of the training rows makes accuracy a poor objective


@dataclass(frozen=True)
class DataReport:
    """The data's facts (`lines`), what to check before trusting a result (`warnings`), and the baseline."""

    lines: tuple[str, ...]
    warnings: tuple[str, ...]
    baseline: Baseline | None

    def text(self) -> str:
        baseline_line = [f"baseline {self.baseline.metric} {self.baseline.value:.4f}: {self.baseline.predictor}"] \
            if self.baseline else []
        return "\n".join([*self.lines, *baseline_line, *(f"warning: {w}" for w in self.warnings)]) + "\n"


def data_report(space: Space) -> DataReport:
    """Load the space's data as its trials will and describe it (see the module docstring)."""
    from kerasweep.search.trial import data_values, train_spec
    from kerasweep.trainers.fit import load_data
    from kerasweep.trainers.leaks import leak_warnings

    data = load_data(train_spec(space, data_values(space)))
    if data.streams is not None:
        lines = [f"data: {space.data}, streamed (its datasets train; the baseline needs every row in memory)"]
    else:
        lines = [f"data: {len(data.x_train)} training and {len(data.x_val)} validation rows"
                 + (f" ({space.validation})" if space.validation else f" (split {1 - space.validation_split:.0%} / "
                                                                          f"{space.validation_split:.0%})")]
    if data.plan is not None:
        lines += [f"columns {line}" for line in data.plan.describe()]
    if data.series is not None:  # a forecast: the windows, the time split and the naive forecasts
        lines = data.series.describe()
    warnings = []
    if data.dropped_rows:
        warnings.append(f"{data.dropped_rows} row(s) left out: their target ({space.target}) is missing")
    warnings += [*data.notices, *leak_warnings(data), *_rare_class(space, data), *_random_sequences(space, data)]
    return DataReport(tuple(lines), tuple(warnings), baseline(data, space.objective.metric))


def _random_sequences(space: Space, data: Any) -> list[str]:
    """Sequences split at random: windows cut from one series would validate on the years they trained on."""
    if data.series is not None or data.streams is not None or np.ndim(data.x_train) != 3 or space.split == "ordered" \
            or space.validation is not None:
        return []
    return ["the sequences are split at random: if they are windows of one series, the validation windows overlap "
            "the training ones and the score is no forecast error; set split: ordered (the last rows validate) or "
            "use task: forecast on the series itself"]


def _rare_class(space: Space, data: Any) -> list[str]:
    """A class under RARE_SHARE of the training rows, with the fix, unless class weights are set."""
    if space.task not in ("classification", "binary") or space.fit.class_weight is not None:
        return []
    counts = data.class_counts()
    total = sum(counts)
    rare = [(name, n) for name, n in zip(data.classes, counts) if n / total < RARE_SHARE]
    if not rare:
        return []
    name, n = min(rare, key=lambda pair: pair[1])
    metric = "val_auc" if space.task == "binary" else "val_balanced_accuracy"
    return [f"class {name!r} is {n / total:.1%} of the training rows ({n} of {total}): accuracy rewards always "
            f"answering the majority; set fit: {{class_weight: balanced}} and objective: {{metric: {metric}, "
            "direction: maximize}"]
