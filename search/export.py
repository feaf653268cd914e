"""Best trial -> a self-contained YAML config that production training takes as it is.

The file holds exactly the trainer's `TrainSpec` fields plus provenance, so it rebuilds the winner
without the space file, the store or kerasweep itself (`cfg` is what `yaml.safe_load` reads from
`runs/exports/<sweep>.yaml`; `tests/test_docs.py` runs this example):

    >>> from kerasweep.trainers.models import build
    >>> cfg = {"model": "mlp", "params": {"units": 16, "layers": 2, "dropout": 0.1}}
    >>> model = build(cfg["model"], cfg["params"], input_shape=(4,), n_outputs=3)
    >>> model.output_shape
    (None, 3)

(`code`, where present, is the folder a user's `module:function` imports from.)

(`build` gives the network alone; `kerasweep train` puts the input scaling in front of it.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StrictInt, StrictStr, StringConstraints, ValidationError

from kerasweep.search.constraints import meeting, parse_where
from kerasweep.search.errors import UserInputError
from kerasweep.search.results import SweepResult, TrialResult
from kerasweep.search.safe_yaml import read_yaml
from kerasweep.search.space import ColumnRole, FitArgs, ForecastSettings, TaskName, check_value, describe_errors
from kerasweep.search.sweep import MAX_NAME, NAME_PATTERN, SweepConfig, load_config, sweep_results
from kerasweep.search.trial import train_spec
from kerasweep.trainers.fit import TrainSpec

EXPORT_KEYS = {f.name for f in dataclasses.fields(TrainSpec)} | {"provenance"}
NAME_RULE = f"^{NAME_PATTERN.pattern}$"


def export_config(config: SweepConfig, trial: TrialResult, result: SweepResult) -> dict[str, Any]:
    """The export document for one trial of a sweep."""
    spec = train_spec(config.space, dict(trial.params))
    document = dataclasses.asdict(spec)
    document["target"] = spec.target if isinstance(spec.target, str) else list(spec.target)  # YAML has no tuples
    document["params"] = {k: document["params"][k] for k in sorted(document["params"])}
    if not document["forecast"]:  # a forecast's settings only where the task is one
        del document["forecast"]
    document["provenance"] = {
        "space": config.space.name,
        "sweep": config.name,
        "engine": result.engine,
        "trial": trial.number,
        "mlflow_run_id": trial.mlflow_run_id,
        "objective": {"metric": spec.monitor, "direction": spec.direction, "value": trial.value},
        **({"objectives": [{"metric": o.metric, "direction": o.direction, "value": v}
                           for o, v in zip(config.space.all_objectives, trial.values)]} if trial.values else {}),
        **_trained_on(config, trial),
        **_against_baseline(config, trial, result.direction),
        "kerasweep_version": _version(),
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return document


def _trained_on(config: SweepConfig, trial: TrialResult) -> dict[str, str]:
    """The backend and precision the trial trained under (its run's tags), for the record: production trains
    on the backend it runs on (`KERAS_BACKEND`), which may be another; the saved model loads on any."""
    if not trial.mlflow_run_id:
        return {}
    from kerasweep.search.lifecycle import tracker_of

    return tracker_of(config).runtime(trial.mlflow_run_id)


def _against_baseline(config: SweepConfig, trial: TrialResult, direction: str) -> dict[str, Any]:
    """The sweep's baseline (the trivial predictor's score, `search.data_report`) and whether the trial beat it."""
    from kerasweep.search.lifecycle import tracker_of

    tracker = tracker_of(config)
    parent = config.parent_run_id or tracker.find_sweep_run(config.space.name, config.name)
    found = tracker.sweep_baseline(parent) if parent else None
    if found is None or trial.value is None:
        return {}
    return {"baseline": {"metric": found.metric, "value": found.value, "predictor": found.predictor,
                         "beaten": found.beaten_by(trial.value, direction)}}


def export_best(name: str, store: Path | str | None = None, output: Path | str | None = None, top: int = 1,
                where: Sequence[str] = ()) -> list[Path]:
    """Write the best `top` trials of sweep `name`; returns the written paths (best first).

    `where`: constraints such as `"latency_ms < 5"` (see `search.constraints`); only trials that meet
    them all are exported, and none meeting them is bad input naming the closest trial.
    """
    config = load_config(name, store)
    constraints = parse_where(where, config.space.task)
    result = sweep_results(config)
    ranked = result.ranked()
    if not ranked and result.done:  # every trial so far was pruned (or failed): nothing trained to the end
        raise UserInputError(f"sweep {name!r} has no complete trial: its {result.done} trials were all pruned; re-run it "
                             "with a larger budget (--trials) so that one trains to the end")
    if not ranked:
        raise UserInputError(f"sweep {name!r} has no completed trial yet ({result.done} done); run it first: make sweep")
    if constraints:
        from kerasweep.search.lifecycle import tracker_of

        ranked = meeting(ranked, constraints, tracker_of(config), result.direction == "maximize", name,
                         config.space.objective.metric)
    elif config.space.multi_objective:  # several objectives: the result is the Pareto front, one config each
        base = Path(output) if output else config.store.export(name)
        paths = []
        for trial in result.pareto_front():
            path = base.with_name(f"{base.stem}-trial-{trial.number}{base.suffix}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(export_config(config, trial, result), sort_keys=False))
            paths.append(path)
        return paths
    base = Path(output) if output else config.store.export(name)
    paths = []
    for rank, trial in enumerate(ranked[:top], start=1):
        path = base if rank == 1 else base.with_name(f"{base.stem}-{rank}{base.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        document = export_config(config, trial, result)
        if constraints:
            document["provenance"]["where"] = [str(c) for c in constraints]
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        paths.append(path)
    return paths


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExportedObjective(_Strict):
    metric: str | None = None
    direction: Literal["maximize", "minimize"] | None = None
    value: FiniteFloat | None = None


class ExportedBaseline(_Strict):
    """The trivial predictor's score on the sweep's validation rows, and whether the exported trial beat it."""

    metric: str
    value: FiniteFloat
    predictor: str = Field(max_length=500)
    beaten: bool


class Provenance(_Strict):
    """Where an exported config came from. Names only, never paths: production names its MLflow
    experiment after `space`, and an experiment's artifacts live in a folder of that name."""

    space: str | None = Field(None, pattern=NAME_RULE, max_length=MAX_NAME)
    sweep: str | None = Field(None, pattern=NAME_RULE, max_length=MAX_NAME)
    engine: str | None = Field(None, pattern=NAME_RULE, max_length=MAX_NAME)  # a registered engine's name
    trial: int | None = Field(None, ge=0)
    mlflow_run_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    objective: ExportedObjective | None = None
    objectives: list[ExportedObjective] | None = None  # a multi-objective sweep's: every value of the trial
    where: list[Annotated[str, StringConstraints(max_length=200)]] | None = None  # constraints it was chosen under
    baseline: ExportedBaseline | None = None
    backend: Literal["tensorflow", "jax", "torch"] | None = None  # the Keras backend the trial trained on
    precision: Literal["float32", "mixed_float16"] | None = None  # the dtype policy it trained under
    kerasweep_version: str | None = Field(None, max_length=100)
    exported_at: str | None = Field(None, max_length=100)


class ExportFile(_Strict):
    """An exported config as `kerasweep train` reads it: `TrainSpec`'s fields plus provenance."""

    model: str
    data: str
    params: dict[str, Any] = {}
    epochs: StrictInt = Field(10, ge=1)
    seed: StrictInt = 0
    validation_split: FiniteFloat = Field(0.2, gt=0.0, lt=1.0)
    monitor: str = "val_accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"
    task: TaskName = "classification"
    target: StrictStr | list[StrictStr] = "label"
    validation: StrictStr | None = None
    code: StrictStr | None = None
    fit: FitArgs = FitArgs()
    callbacks: StrictStr | None = None
    columns: dict[StrictStr, ColumnRole] = {}
    forecast: ForecastSettings | None = None
    split: Literal["random", "ordered"] = "random"
    provenance: Provenance | None = None


def load_export(path: Path | str) -> TrainSpec:
    """Read an exported config back into the trainer's TrainSpec; errors name the file and the key."""
    return read_export(path)[0]


def read_export(path: Path | str) -> tuple[TrainSpec, Provenance]:
    """An exported config, checked as strictly as a space file before any work: every field's type and
    range, every param against what the model reads, the data present; one line per problem."""
    from kerasweep.trainers import catalog

    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: config file not found; export one with: kerasweep export NAME")
    document = read_yaml(path)
    if not isinstance(document, dict):
        raise UserInputError(f"{path}: expected a mapping with keys {', '.join(sorted(EXPORT_KEYS))}")
    try:
        parsed = ExportFile.model_validate(document)
    except ValidationError as exc:
        lines = describe_errors(exc, ExportFile, {"provenance": Provenance, "fit": FitArgs})
        raise UserInputError("\n".join(f"{path}: {line}" for line in lines)) from None
    problems = []
    if parsed.model not in catalog.MODEL_PARAMS and not catalog.is_user_builder(parsed.model):
        problems.append(f"model: unknown model {parsed.model!r}; expected one of {', '.join(catalog.MODEL_PARAMS)} "
                        "or a builder 'package.module:function'")
    if (parsed.data not in catalog.BUNDLED_DATASETS and not catalog.is_data_function(parsed.data)
            and not Path(parsed.data).exists()):
        problems.append(f"data: {parsed.data!r} is neither a bundled dataset ({', '.join(catalog.BUNDLED_DATASETS)}), "
                        "a data function 'package.module:function' nor an existing file or folder")
    logged = catalog.task_metrics(parsed.task)
    if parsed.validation is not None and not Path(parsed.validation).exists():
        problems.append(f"validation: {parsed.validation!r} does not exist; point it at the validation file's "
                        "new place")
    if parsed.code is not None and not Path(parsed.code).is_dir():
        problems.append(f"code: folder {parsed.code!r} does not exist; point it at the folder your "
                        f"{parsed.model if ':' in parsed.model else parsed.data} module now imports from")
    if parsed.monitor not in logged:
        problems.append(f"monitor: task {parsed.task} does not log {parsed.monitor!r}; expected one of {', '.join(logged)}")
    known = catalog.known_params(parsed.model) if parsed.model in catalog.MODEL_PARAMS else None
    for name, value in parsed.params.items():
        if known is not None and name not in known:
            problems.append(f"params.{name}: unknown param; the model reads {', '.join(sorted(known))}")
        else:
            problems += check_value(f"params.{name}", name, value, parsed.model)
    if parsed.callbacks is not None and not catalog.DATA_FUNCTION.fullmatch(parsed.callbacks):
        problems.append(f"callbacks: {parsed.callbacks!r} is not a function name; expected 'package.module:function'")
    if problems:
        raise UserInputError("\n".join(f"{path}: {line}" for line in problems))
    fields = parsed.model_dump(exclude={"provenance"})
    fields["fit"] = parsed.fit.model_dump(exclude_defaults=True)
    fields["forecast"] = parsed.forecast.model_dump(exclude_none=True) if parsed.forecast else {}
    return TrainSpec(**fields), parsed.provenance or Provenance()


def _version() -> str:
    try:
        return metadata.version("kerasweep")
    except metadata.PackageNotFoundError:  # running from a checkout without install
        return "0+unknown"
