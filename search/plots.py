"""Sweep plots for the MLflow parent run: history, importances, parallel coordinates, learning curves.

Any engine's `SweepResult` is replayed into an in-memory Optuna study (`optuna.trial.create_trial`),
so every engine gets the same plots from Optuna's own visualisation code: PNG files (matplotlib) and
one self-contained HTML page (plotly, script embedded: it opens offline).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState as OptunaState

from kerasweep.search.engines._optuna_space import chosen_features, distributions
from kerasweep.search.results import SweepResult, TrialState
from kerasweep.search.space import Space

PLOTS = ("optimization_history", "param_importances", "parallel_coordinate", "intermediate_values")
_STATES = {TrialState.COMPLETE: OptunaState.COMPLETE, TrialState.PRUNED: OptunaState.PRUNED,
           TrialState.FAILED: OptunaState.FAIL}


def replay(result: SweepResult, space: Space) -> optuna.Study:
    """An in-memory study holding the finished trials of `result`."""
    directions = list(result.directions) or [result.direction]
    with chosen_features():  # no "A new study created in memory" line
        study = optuna.create_study(directions=directions, study_name=result.name)
    dists = distributions(space)
    for trial in result.trials:
        if trial.state not in _STATES or (len(directions) > 1 and trial.state is TrialState.COMPLETE
                                          and not trial.values):
            continue
        params = {k: v for k, v in trial.params.items() if k in dists}
        complete = trial.state is TrialState.COMPLETE
        study.add_trial(optuna.trial.create_trial(
            state=_STATES[trial.state],
            value=trial.value if complete and len(directions) == 1 else None,
            values=list(trial.values) if complete and len(directions) > 1 else None,
            params=params,
            distributions={k: dists[k] for k in params},
            intermediate_values=trial.intermediate,
        ))
    return study


def _plots(space: Space) -> list[tuple[str, dict]]:
    """Each plot with its options: with several objectives, the others show the first objective and the
    Pareto front comes first."""
    if not space.multi_objective:
        return [(name, {}) for name in PLOTS]
    metrics = [o.metric for o in space.all_objectives]
    first = {"target": lambda t: t.values[0], "target_name": metrics[0]}
    return [("pareto_front", {"target_names": metrics}),
            *((name, first if name != "intermediate_values" else {}) for name in PLOTS)]


def write_plots(result: SweepResult, space: Space, folder: Path) -> list[Path]:
    """Write every plot the trials allow (PNG each, one HTML page); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    study = replay(result, space)
    written: list[Path] = []
    html_parts: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, options in _plots(space):
            try:
                axes = getattr(optuna.visualization.matplotlib, f"plot_{name}")(study, **options)
                figure = getattr(axes, "figure", None) or axes.flat[0].figure
                figure.set_size_inches(10, 6)
                figure.tight_layout()
                figure.savefig(folder / f"{name}.png", dpi=100)
                plt.close(figure)
                written.append(folder / f"{name}.png")
                figure_html = getattr(optuna.visualization, f"plot_{name}")(study, **options)
                html_parts.append(figure_html.to_html(full_html=False, include_plotlyjs=not html_parts))
            except (ValueError, RuntimeError, ZeroDivisionError, IndexError):
                continue  # too few finished trials for this plot
    if html_parts:
        page = folder / "sweep.html"
        page.write_text(f"<html><head><meta charset='utf-8'><title>{result.name}</title></head><body>"
                        f"<h1>Sweep {result.name}</h1>{''.join(html_parts)}</body></html>")
        written.append(page)
    return written
