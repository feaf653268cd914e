"""Best trial -> a self-contained YAML config that production training takes as it is.

The file holds exactly the trainer's `TrainSpec` fields plus provenance, so it rebuilds the winner
without the space file, the store or kerasweep itself:

    import yaml, keras
    from trainers.models import build
    cfg = yaml.safe_load(open("runs/exports/cnn.yaml"))
    model = build(cfg["model"], cfg["params"], input_shape=(8, 8, 1), n_classes=10)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from search.errors import UserInputError, yaml_problem
from search.results import SweepResult, TrialResult
from search.sweep import SweepConfig, load_config, sweep_results
from search.trial import train_spec
from trainers.fit import TrainSpec

EXPORT_KEYS = {f.name for f in dataclasses.fields(TrainSpec)} | {"provenance"}


def export_config(config: SweepConfig, trial: TrialResult, result: SweepResult) -> dict[str, Any]:
    """The export document for one trial of a sweep."""
    spec = train_spec(config.space, dict(trial.params))
    document = dataclasses.asdict(spec)
    document["params"] = {k: document["params"][k] for k in sorted(document["params"])}
    document["provenance"] = {
        "space": config.space.name,
        "sweep": config.name,
        "engine": result.engine,
        "trial": trial.number,
        "mlflow_run_id": trial.mlflow_run_id,
        "objective": {"metric": spec.monitor, "direction": spec.direction, "value": trial.value},
        "kerasweep_version": _version(),
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return document


def export_best(name: str, store: Path | str | None = None, output: Path | str | None = None, top: int = 1) -> list[Path]:
    """Write the best `top` trials of sweep `name`; returns the written paths (best first)."""
    config = load_config(name, store)
    result = sweep_results(config)
    ranked = result.ranked()
    if not ranked:
        raise UserInputError(f"sweep {name!r} has no completed trial yet ({result.done} done); run it first: make sweep")
    base = Path(output) if output else config.store / "exports" / f"{name}.yaml"
    paths = []
    for rank, trial in enumerate(ranked[:top], start=1):
        path = base if rank == 1 else base.with_name(f"{base.stem}-{rank}{base.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(export_config(config, trial, result), sort_keys=False))
        paths.append(path)
    return paths


def load_export(path: Path | str) -> TrainSpec:
    """Read an exported config back into the trainer's TrainSpec; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: config file not found; export one with: kerasweep export NAME")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path}: {yaml_problem(exc)}") from None
    if not isinstance(document, dict):
        raise UserInputError(f"{path}: expected a mapping with keys {', '.join(sorted(EXPORT_KEYS))}")
    unknown = set(document) - EXPORT_KEYS
    if unknown:
        raise UserInputError(f"{path}: {sorted(unknown)[0]}: unknown key; valid keys: {', '.join(sorted(EXPORT_KEYS))}")
    for key in ("model", "data"):
        if key not in document:
            raise UserInputError(f"{path}: {key}: missing required field")
    from trainers import catalog

    if document["model"] not in catalog.MODEL_PARAMS and not catalog.is_user_builder(str(document["model"])):
        raise UserInputError(f"{path}: model: unknown model {document['model']!r}; expected one of "
                             f"{', '.join(catalog.MODEL_PARAMS)}")
    if not isinstance(document.get("params", {}), dict):
        raise UserInputError(f"{path}: params: expected a mapping of param names to values, got {document['params']!r}")
    epochs = document.get("epochs", 1)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise UserInputError(f"{path}: epochs: expected a whole number >= 1, got {epochs!r}")
    if document["data"] not in catalog.BUNDLED_DATASETS and not Path(document["data"]).exists():
        raise UserInputError(f"{path}: data: {document['data']!r} is neither a bundled dataset "
                             f"({', '.join(catalog.BUNDLED_DATASETS)}) nor an existing file or folder")
    fields = {k: v for k, v in document.items() if k != "provenance"}
    return TrainSpec(**fields)


def _version() -> str:
    try:
        return metadata.version("kerasweep")
    except metadata.PackageNotFoundError:  # running from a checkout without install
        return "0+unknown"
