"""Each engine turns the space's pruner name (or its absence) into its own early-stopping scheduler."""

from __future__ import annotations

import pytest

from kerasweep.search.space import load_space


@pytest.mark.parametrize("pruner, expected", [
    (None, "HyperbandPruner"), ("hyperband", "HyperbandPruner"), ("successive_halving", "SuccessiveHalvingPruner"),
    ("median", "MedianPruner"), ("none", "NopPruner"),
])
def test_optuna_pruners(pruner: str | None, expected: str) -> None:
    from kerasweep.search.engines.optuna import make_pruner

    space = load_space("mlp").with_overrides(pruner=pruner)
    assert type(make_pruner(space)).__name__ == expected


@pytest.mark.parametrize("epochs, first_rung", [(2, 1), (15, 1), (31, 1), (32, 2), (52, 3), (100, 6)])
def test_optuna_hyperband_starts_at_a_sixteenth_of_the_epochs(epochs: int, first_rung: int) -> None:
    from kerasweep.search.engines.optuna import make_pruner

    pruner = make_pruner(load_space("mlp").with_overrides(epochs=epochs))
    # Rule: the first rung is a sixteenth of the epochs, at least 1 (LCBench: docs/benchmarks.md, table 6)
    assert (pruner._min_resource, pruner._max_resource) == (first_rung, epochs)


@pytest.mark.parametrize("pruner, expected, brackets", [
    (None, "AsyncHyperBandScheduler", 1),  # ASHA by default
    ("successive_halving", "AsyncHyperBandScheduler", 1),
    ("hyperband", "AsyncHyperBandScheduler", 3),  # asynchronous Hyperband: several brackets
    ("median", "MedianStoppingRule", None),
    ("none", "FIFOScheduler", None),
])
def test_ray_schedulers(pruner: str | None, expected: str, brackets: int | None) -> None:
    from kerasweep.search.engines.ray import make_scheduler

    space = load_space("mlp").with_overrides(pruner=pruner)
    scheduler = make_scheduler(space)
    assert type(scheduler).__name__ == expected
    if brackets is not None:
        assert len(scheduler._brackets) == brackets
        assert scheduler._time_attr == "epoch" and scheduler._max_t == space.budget.epochs + 1
