"""MLflow, and only here: a parent run per sweep, a nested run per trial, one shape for every engine.

Every call goes through `MlflowClient` with explicit run ids (no global active run), so parallel
workers log side by side without a lock. The shape, which a contract test checks:

- experiment = the space's name; parent run named after the sweep, tags `kerasweep.sweep=<name>`,
  `kerasweep.role=sweep`, the space file as an artifact, and at the end counts, best value and trial;
  its data report (`data/report.txt`, metric `baseline_<metric>`: the trivial predictor's score);
- trial run `trial-<n>` with `mlflow.parentRunId`, tags `kerasweep.trial=<n>` and `kerasweep.state`,
  every resolved param, per-epoch metrics at step = epoch, run status FINISHED (complete),
  KILLED (pruned) or FAILED (failed, with `kerasweep.error`), and `checkpoint/model.keras` and metric
  `objective` (the value the sweep ranks it by) when complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from kerasweep.search.epoch_writer import EpochWriter
from kerasweep.search.errors import UserInputError
from kerasweep.search.interrupts import deferred_interrupts
from kerasweep.search.results import TrialResult, TrialState
from kerasweep.search.store import Store, sqlite_url
from kerasweep.trainers.baselines import Baseline

RUN_STATUS = {
    TrialState.COMPLETE: "FINISHED",
    TrialState.PRUNED: "KILLED",
    TrialState.FAILED: "FAILED",
    TrialState.RUNNING: "RUNNING",
}
PARAMS_TAG, VALUE_TAG, VALUES_TAG = "kerasweep.params", "kerasweep.value", "kerasweep.values"
# on a complete trial run: the value the sweep ranks it by (its best epoch's objective, or the repeats' mean);
# sorting the MLflow UI by this column puts the exported winner first (the last epoch's value would not)
RANKED_METRIC = "objective"
BASELINE_TAG = "kerasweep.baseline"  # on a parent run: the trivial predictor's score (trainers.baselines), JSON
WARNINGS_TAG = "kerasweep.data_warnings"  # on a parent run: what the data's report warned of, one per line
REPEAT_METRIC = "repeat_value"  # budget.repeats: each training's value of the objective, step = its number
PARETO_TAG = "kerasweep.pareto"  # "true" on the trial runs of a multi-objective sweep's Pareto front
SWEEP_TAG, TRIAL_TAG, STATE_TAG, ROLE_TAG, ERROR_TAG = (
    "kerasweep.sweep",
    "kerasweep.trial",
    "kerasweep.state",
    "kerasweep.role",
    "kerasweep.error",
)
RETRY_TAG = "kerasweep.retry_of"  # on a trial run: the number of the trial it retries
RESUMED_TAG = "kerasweep.resumed_from_epoch"  # on a retry: the epochs it took over from that trial's backup
DEBUG_TAG = "kerasweep.debug"  # on a trial run of `--debug` (eager, one trial)
BACKEND_TAG = "kerasweep.backend"  # on a trained trial run: the Keras backend it trained on (tensorflow, jax, torch)
DEVICES_TAG = "kerasweep.devices"  # on a trained trial run: how many devices one trial trained across (1 unless several GPUs)
PRECISION_TAG = "kerasweep.precision"  # on a trained trial run: float32 or mixed_float16, as chosen for it
ORPHAN_REASON = "worker process died during the trial"  # a trial whose process was killed
SERVED_MODEL = Path(__file__).with_name("served_model.py")  # stored with each registered model (models from code)


def tracking_uri_for(store: Path) -> str:
    """`MLFLOW_TRACKING_URI` when set (a team server), else the store's own SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or sqlite_url(Store(store).mlflow_db)


def artifact_root_for(store: Path) -> Path | None:
    """The store's artifact folder for a local tracking store; None when a server keeps artifacts."""
    return None if os.environ.get("MLFLOW_TRACKING_URI") else Store(store).artifacts


def _create_schema(db: Path) -> None:
    """MLflow's current schema in a new SQLite file (about 80 migrations, 1.5 to 2.5 s), made the public way:
    a client's first read of a new tracking store."""
    from mlflow import MlflowClient

    migrations = logging.getLogger("mlflow.store.db.utils")  # "Creating initial MLflow database tables...": ours
    level = migrations.level
    migrations.setLevel(logging.WARNING)
    try:
        MlflowClient(tracking_uri=sqlite_url(db)).search_experiments(max_results=1)
    finally:
        migrations.setLevel(level)


def schema_template() -> Path:
    """An empty SQLite file with this MLflow version's schema, cached per user (made on first use)."""
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kerasweep"
    template = cache / f"mlflow-{mlflow.__version__}-schema.db"
    if not template.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f"{template.name}.{os.getpid()}.partial"
        _create_schema(partial)
        os.replace(partial, template)
    return template


def seed_new_store(db: Path) -> None:
    """Start a new SQLite tracking store complete, in one step, as a copy of `schema_template()`.

    Two reasons. Speed: MLflow creates a new store's schema with about 80 migrations, 1.5 to 2.5 s,
    a cost each fresh sweep (and each test) paid before its first trial; a copy takes milliseconds.
    Safety: two processes migrating one file at once fail (Alembic's "expected to match one row",
    "table already exists"; measured 6 of 12 commands opening one fresh store together). The file
    appears whole (a hard link), so no process ever sees it half-made. Without a writable cache the
    schema is built beside the store and linked the same way. When even that fails (no hard links on
    that filesystem), MLflow creates the schema in place as before and `Tracker` retries.
    """
    if db.exists():
        return
    partial = db.with_name(f"{db.name}.{os.getpid()}.partial")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(schema_template(), partial)
        except OSError:  # no writable cache (a read-only home): make the schema here
            partial.unlink(missing_ok=True)
            _create_schema(partial)
        try:
            os.link(partial, db)  # only where still absent: another command may have created it meanwhile
        except FileExistsError:
            pass
    except Exception as exc:  # noqa: BLE001 - best effort: MLflow creates the schema itself
        logging.getLogger("kerasweep").warning("kerasweep: %s: no copy of the schema template (%s); MLflow "
                                               "migrates this new store itself (about 2 s)", db, exc)
        return
    finally:
        partial.unlink(missing_ok=True)


def seed_if_local(tracking_uri: str) -> None:
    """`seed_new_store` for a tracking URI that names a local SQLite file; a server's is left alone."""
    if tracking_uri.startswith("sqlite:///"):
        seed_new_store(Path(tracking_uri.removeprefix("sqlite:///")))


def raw_row_signature(example: Any) -> Any:
    """A table's served signature: its columns by name, each of any type. MLflow's own types would refuse
    the rows the model was trained on (int64 columns of the very CSV: "Can not safely convert int64 to
    float64"; a float column once a cell is missing); the served model converts them itself, and MLflow
    still names a missing column."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec(AnyType(), str(name)) for name in example.columns]))


def trial_number(run: Any) -> int | None:
    """The trial number a run is tagged with; None for a run without one."""
    tag = run.data.tags.get(TRIAL_TAG, "")
    return int(tag) if tag.isdigit() else None


def _migrating_elsewhere(chain: tuple[BaseException | None, ...]) -> bool:
    """An error MLflow raises while another process creates or upgrades the same new SQLite store: a
    table it made first ("already exists", a lock), its version row moved on (Alembic's "expected to match
    one row"), a schema seen half-way. Retried: measured, 6 of 12 commands opening one fresh store at once
    failed with one of these when the schema could not be copied (see `seed_new_store`), as a sweep did
    when `kerasweep ui` or another client created the store a moment before it."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import IntegrityError, OperationalError

    for error in chain:
        if isinstance(error, (OperationalError, IntegrityError, CommandError)):
            return True
        if error is not None and "out-of-date database schema" in str(error):
            return True
    return False


class Tracker:
    """Writes sweeps and trials to one MLflow tracking store; cheap to create once per worker process."""

    def __init__(self, tracking_uri: str, artifact_root: Path | None = None, queue_epochs: bool | None = None) -> None:
        for noisy in ("mlflow", "alembic", "sqlalchemy"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        from mlflow.tracking import MlflowClient

        seed_if_local(tracking_uri)

        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self._experiment_of: dict[str, str] = {}  # parent run id -> its experiment id
        self.client = self._open(MlflowClient)
        # on a tracking server, epochs are written off the training thread (search.epoch_writer); a trial's
        # writes are awaited before anything reads or ends its run
        remote = tracking_uri.startswith(("http://", "https://"))
        self._writer = EpochWriter() if (remote if queue_epochs is None else queue_epochs) else None

    def _open(self, client_class: type, attempts: int = 20) -> Any:
        """A client that touched the store once, retrying while another process creates or migrates a
        new SQLite file (two processes migrating at once fail with "table ... already exists"); a store
        that cannot be read at all (a damaged file) is the user's to fix: one line, exit 2."""
        from sqlalchemy.exc import DatabaseError, OperationalError

        for attempt in range(attempts):
            try:
                client = client_class(tracking_uri=self.tracking_uri)
                client.search_experiments(max_results=1)
                return client
            except Exception as exc:  # MLflow wraps some driver errors in MlflowException
                chain = (exc, exc.__cause__, exc.__context__)
                if _migrating_elsewhere(chain) and attempt < attempts - 1:
                    time.sleep(0.5)
                    continue
                if any(isinstance(e, (DatabaseError, OperationalError)) for e in chain):
                    raise self._unreadable(exc) from None
                raise

    def _unreadable(self, exc: Exception) -> UserInputError:
        reason = str(getattr(exc, "orig", None) or exc).removeprefix("(sqlite3.DatabaseError) ").splitlines()[0]
        where = self.tracking_uri.removeprefix("sqlite:///")
        return UserInputError(f"{where}: the MLflow tracking store cannot be read ({reason}); restore "
                              "it from a backup, or move it away to start a new store")

    @classmethod
    def for_store(cls, store: Path) -> Tracker:
        uri = tracking_uri_for(store)
        return cls(uri, artifact_root=artifact_root_for(store))

    # --- sweep (parent run) -------------------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        """The experiment for a space, created on first use (artifacts under the store when local)."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = (self.artifact_root / name).resolve().as_uri() if self.artifact_root else None
        try:
            # the tag opens the experiment in the UI's "Model training" view, not the GenAI one
            return self.client.create_experiment(name, artifact_location=location,
                                                 tags={"mlflow.experimentKind": "custom_model_development"})
        except Exception:  # noqa: BLE001 - another worker created it first
            return self.client.get_experiment_by_name(name).experiment_id

    def find_sweep_run(self, experiment: str, sweep: str) -> str | None:
        """The parent run of sweep `sweep`, if one exists (a resumed sweep reuses it)."""
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            return None
        runs = self.client.search_runs(
            [found.experiment_id],
            filter_string=f"tags.`{SWEEP_TAG}` = '{sweep}' and tags.`{ROLE_TAG}` = 'sweep'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    @deferred_interrupts()
    def start_sweep(self, experiment: str, sweep: str, space_file: Path | None, settings: dict[str, Any]) -> str:
        """Create the sweep's parent run, or reopen it when resuming; returns its run id."""
        run_id = self.find_sweep_run(experiment, sweep)
        if run_id is not None:
            if ERROR_TAG in self.client.get_run(run_id).data.tags:  # why the last attempt failed: stale now
                self.client.delete_tag(run_id, ERROR_TAG)
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(
            self.experiment_id(experiment),
            run_name=sweep,
            tags={SWEEP_TAG: sweep, ROLE_TAG: "sweep", **{f"kerasweep.{k}": str(v) for k, v in settings.items()}},
        )
        if space_file is not None:
            self.client.log_artifact(run.info.run_id, str(space_file), "space")
        return run.info.run_id

    @deferred_interrupts()
    def finish_sweep(self, run_id: str, counts: dict[str, int], metric: str, best_value: float | None,
                     best_trial: int | None, status: str = "FINISHED", reason: str | None = None) -> None:
        """Final counts per state and the best trial on the parent run, then close it with `status`
        (FINISHED, KILLED for Ctrl-C or SIGTERM, FAILED with the `reason` in `kerasweep.error`)."""
        now = int(time.time() * 1000)
        from mlflow.entities import Metric, RunTag

        metrics = [Metric(f"trials_{state}", float(n), now, 0) for state, n in counts.items() if state != "running"]
        if best_value is not None:
            metrics.append(Metric(f"best_{metric}", float(best_value), now, 0))
            self.client.set_tag(run_id, "kerasweep.best_trial", str(best_trial))
            self.client.set_tag(run_id, "kerasweep.best_value", f"{best_value:.6g}")
        tags = [RunTag(ERROR_TAG, reason[:4000])] if reason else []
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(run_id, status=status)

    @deferred_interrupts()
    def log_data_report(self, run_id: str, text: str, warnings: Sequence[str], baseline: Baseline | None) -> None:
        """A sweep's data report (`search.data_report`) on its parent run: the text as `data/report.txt`, the
        baseline as metric `baseline_<metric>` and a tag, the warnings as a tag (all searchable in the UI)."""
        from mlflow.entities import Metric, RunTag

        tags = [RunTag(WARNINGS_TAG, "\n".join(warnings)[:4000])] if warnings else []
        metrics = []
        if baseline is not None:
            tags.append(RunTag(BASELINE_TAG, json.dumps(dataclasses.asdict(baseline))))
            metrics.append(Metric(f"baseline_{baseline.metric}", baseline.value, int(time.time() * 1000), 0))
        self.client.log_batch(run_id, metrics=metrics, tags=tags)
        self.client.log_text(run_id, text, "data/report.txt")

    def sweep_baseline(self, run_id: str) -> Baseline | None:
        """The baseline a sweep's parent run holds, or None (a sweep logged before baselines, streamed data)."""
        tag = self.client.get_run(run_id).data.tags.get(BASELINE_TAG)
        return Baseline(**json.loads(tag)) if tag else None

    @deferred_interrupts()
    def log_plots(self, run_id: str, folder: Path) -> None:
        """Attach the sweep's plots (PNG and HTML) to its parent run under `plots/`."""
        self.client.log_artifacts(run_id, str(folder), "plots")

    # --- production training ---------------------------------------------------------------------
    def log_production(self, experiment: str, run_name: str, params: dict[str, Any], history: dict[str, list[float]],
                       model_file: Path, registered_name: str, tags: dict[str, str], example: Any,
                       labels: dict[str, Any], columns: str | None = None,
                       series: str | None = None) -> tuple[str, int]:
        """A production run with its params and per-epoch metrics, and the model registered as a new
        version of `registered_name`; returns (run id, version).

        The registered model is an MLflow pyfunc (`search/served_model.py`) around the saved Keras model
        `model_file`: raw rows in, answers in the user's terms out (class names, label names, or numbers
        in the target's units), with an input example and the signature MLflow infers from it. `labels`
        (the task and its class names, in output order) are stored with it and as the run's `labels.json`;
        `columns`, a table's column plan (`trainers.raw_columns`, JSON), with the module that applies it;
        `series`, a forecast's window plan (`trainers.series_plan`, JSON), likewise."""
        import mlflow

        previous = os.environ.get("MLFLOW_TRACKING_URI")  # set_tracking_uri sets it: it would steer later stores
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            return self._log_production(experiment, run_name, params, history, model_file, registered_name, tags,
                                        example, labels, {"columns": columns, "series": series})
        finally:
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous

    def _log_production(self, experiment: str, run_name: str, params: dict[str, Any], history: dict[str, list[float]],
                        model_file: Path, registered_name: str, tags: dict[str, str], example: Any,
                        labels: dict[str, Any], plans: dict[str, str | None]) -> tuple[str, int]:
        import tempfile

        import keras
        import mlflow
        from mlflow.entities import Metric, Param

        run = self.client.create_run(self.experiment_id(experiment), run_name=run_name,
                                     tags={ROLE_TAG: "production", **tags})
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(params.items())])
        now = int(time.time() * 1000)
        for key, values in history.items():
            self.client.log_batch(run_id, metrics=[Metric(key, float(v), now, i + 1) for i, v in enumerate(values)])
        with tempfile.TemporaryDirectory() as folder, mlflow.start_run(run_id=run_id):
            labels_file = Path(folder) / "labels.json"
            labels_file.write_text(json.dumps(labels))
            self.client.log_artifact(run_id, str(labels_file))  # the user's names for the model's outputs
            artifacts = {"keras_model": str(model_file), "labels": str(labels_file)}
            from kerasweep.trainers import raw_columns, series_plan

            code_paths = []
            # a table's raw rows are encoded by its column plan, a series' recent rows windowed by its plan,
            # in the served model too: each plan and the module that applies it go with the model
            for key, module in (("columns", raw_columns), ("series", series_plan)):
                if plans.get(key) is not None:
                    plan_file = Path(folder) / f"{key}.json"
                    plan_file.write_text(plans[key])
                    self.client.log_artifact(run_id, str(plan_file))
                    artifacts[key] = str(plan_file)
                    code_paths.append(module.__file__)
            signature = raw_row_signature(example) if hasattr(example, "columns") else None
            info = mlflow.pyfunc.log_model(
                name="model", python_model=str(SERVED_MODEL), registered_model_name=registered_name,
                artifacts=artifacts, code_paths=code_paths or None, signature=signature,
                input_example=example,  # raw rows; for arrays, MLflow infers the signature by answering them
                # the backend it trained on: the saved model loads on any, this one is sure to be there
                pip_requirements=[f"keras=={keras.__version__}", keras.backend.backend(), "pandas"],
                model_config={"backend": keras.backend.backend()},
            )
        return run_id, int(info.registered_model_version)

    # --- trials (nested runs) -----------------------------------------------------------------
    @deferred_interrupts()
    def start_trial(self, parent_run_id: str, sweep: str, number: int, params: dict[str, Any],
                    extra_tags: dict[str, str] | None = None) -> str:
        """Open trial `number`'s nested run with its resolved params; returns the run id."""
        if parent_run_id not in self._experiment_of:  # one lookup per sweep, not per trial
            self._experiment_of[parent_run_id] = self.client.get_run(parent_run_id).info.experiment_id
        run = self.client.create_run(
            self._experiment_of[parent_run_id],
            run_name=f"trial-{number}",
            tags={
                "mlflow.parentRunId": parent_run_id,
                SWEEP_TAG: sweep,
                TRIAL_TAG: str(number),
                ROLE_TAG: "trial",
                STATE_TAG: TrialState.RUNNING.value,
                PARAMS_TAG: json.dumps(params, sort_keys=True, default=str),  # typed values, for export
                **(extra_tags or {}),
            },
        )
        from mlflow.entities import Param

        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in sorted(params.items())])
        return run.info.run_id

    @deferred_interrupts()
    def add_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Params known only once the trial ran (what a define-by-run builder asked for), merged into the
        run's typed values too (`kerasweep.params`, read back by export)."""
        from mlflow.entities import Param, RunTag

        run = self.client.get_run(run_id)
        known = json.loads(run.data.tags.get(PARAMS_TAG, "{}"))
        new = {k: v for k, v in params.items() if k not in run.data.params}
        tag = RunTag(PARAMS_TAG, json.dumps({**known, **params}, sort_keys=True, default=str))
        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(new.items())], tags=[tag])

    @deferred_interrupts()
    def log_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        """One epoch's metrics at step = epoch (counted from 1)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, epoch) for k, v in metrics.items() if isinstance(v, (int, float))]
        if batch and self._writer is not None:
            self._writer.submit(run_id, self.client.log_batch, run_id, metrics=batch)
        elif batch:
            self.client.log_batch(run_id, metrics=batch)

    def flush(self, run_id: str) -> None:
        """Wait until every queued epoch of the run is written (a failed write is raised here)."""
        if self._writer is not None:
            self._writer.flush(run_id)

    @deferred_interrupts()
    def finish_trial(self, run_id: str, state: TrialState, value: float | None = None,
                     checkpoint: Path | None = None, error: str | None = None, details: str | None = None,
                     measures: dict[str, float] | None = None, values: tuple[float, ...] | None = None,
                     repeats: tuple[float, ...] = (), runtime: dict[str, str] | None = None) -> None:
        """Record how the trial ended: state tag, run status, checkpoint (complete), error (failed), what
        the trained model costs (`measures`: catalog.MEASURES, logged as metrics) and, with
        `budget.repeats`, each training's value (metric `repeat_value`, step = the training's number);
        `runtime`: what it trained on (backend and precision tags)."""
        from mlflow.entities import Metric, RunTag

        self.flush(run_id)
        tags = [RunTag(STATE_TAG, state.value)]  # one write for all tags and measures: once per trial
        tags += [RunTag(k, v) for k, v in sorted((runtime or {}).items())]
        if value is not None:
            tags.append(RunTag(VALUE_TAG, repr(float(value))))
        if error:
            tags.append(RunTag(ERROR_TAG, error[:4000]))
        if values is not None:  # several objectives: each one's value, in order
            tags.append(RunTag(VALUES_TAG, json.dumps([float(v) for v in values])))
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in (measures or {}).items()]
        metrics += [Metric(REPEAT_METRIC, float(v), now, step) for step, v in enumerate(repeats, start=1)]
        if state is TrialState.COMPLETE and value is not None:  # what the sweep ranks: sort by it in the UI
            metrics.append(Metric(RANKED_METRIC, float(value), now, 0))
        self.client.log_batch(run_id, tags=tags, metrics=metrics)
        if details:
            self.client.log_text(run_id, details, "error.txt")
        if checkpoint is not None and Path(checkpoint).exists():
            self.client.log_artifact(run_id, str(checkpoint), "checkpoint")
        self.client.set_terminated(run_id, status=RUN_STATUS[state])

    @deferred_interrupts()
    def copy_epochs(self, source_run_id: str, run_id: str, epochs: int, keys: Iterable[str]) -> None:
        """Start a continued trial's curves with the first `epochs` steps of the run it continues, so its
        history reads as one run: each epoch once, in order."""
        from mlflow.entities import Metric

        self.flush(source_run_id)
        batch = [Metric(m.key, m.value, m.timestamp, m.step) for key in keys
                 for m in self.client.get_metric_history(source_run_id, key) if 1 <= m.step <= epochs]
        for start in range(0, len(batch), 1000):  # MLflow's limit per batch
            self.client.log_batch(run_id, metrics=batch[start:start + 1000])

    def trial_params(self, run_id: str) -> dict[str, Any]:
        """A trial run's typed values (`kerasweep.params`), as export reads them."""
        return json.loads(self.client.get_run(run_id).data.tags.get(PARAMS_TAG, "{}"))

    def metric_history(self, run_id: str, key: str) -> dict[int, float]:
        """A run's values of one metric by step (epoch)."""
        self.flush(run_id)
        return {m.step: m.value for m in self.client.get_metric_history(run_id, key)}

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """A run's metrics, each at its latest value (a trial's measures are logged once)."""
        self.flush(run_id)
        return dict(self.client.get_run(run_id).data.metrics)

    def runtime(self, run_id: str) -> dict[str, str]:
        """What a trained trial ran on: {"backend": ..., "precision": ...} from its tags (empty before training)."""
        tags = self.client.get_run(run_id).data.tags
        return {key: tags[tag] for key, tag in (("backend", BACKEND_TAG), ("precision", PRECISION_TAG)) if tag in tags}

    def is_running(self, run_id: str) -> bool:
        return self.client.get_run(run_id).info.status == "RUNNING"

    def has_run(self, run_id: str) -> bool:
        """Whether this store holds the run (a run id recorded elsewhere, checked against this store)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException:
            return False
        return True

    @deferred_interrupts()
    def tag(self, run_id: str, key: str, value: str) -> None:
        """One extra tag on a run (for example which Ray node ran a trial)."""
        self.client.set_tag(run_id, key, value)

    @deferred_interrupts()
    def fail_unfinished_trials(self, parent_run_id: str, reason: str,
                               keep: Callable[[int | None], bool] = lambda number: False) -> int:
        """Mark trial runs still RUNNING under a parent as failed (their process died), but those whose
        trial number `keep` names (asked only after the one search); returns how many."""
        parent = self.client.get_run(parent_run_id)
        runs = self.client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'RUNNING'",
            max_results=10000,
        )
        stale = [r for r in runs if not keep(trial_number(r))]
        for run in stale:
            self.finish_trial(run.info.run_id, TrialState.FAILED, error=reason)
        return len(stale)

    def trial_runs(self, parent_run_id: str) -> list[Any]:
        """All nested trial runs of a sweep (for status, export provenance and tests)."""
        parent = self.client.get_run(parent_run_id)
        return self.client.search_runs(
            [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
            max_results=10000,
        )

    def trial_results(self, parent_run_id: str, metric: str) -> list[TrialResult]:
        """A sweep's trials as recorded here, in trial order: for engines whose own store is not the
        record (Ray's driver callback and the KerasTuner engine write MLflow as trials happen)."""
        found = []
        for run in self.trial_runs(parent_run_id):
            tags = run.data.tags
            history = self.metric_history(run.info.run_id, metric)
            found.append(TrialResult(
                number=int(tags[TRIAL_TAG]),
                state=TrialState(tags.get(STATE_TAG, "running")),
                value=float(tags[VALUE_TAG]) if VALUE_TAG in tags else None,
                params=json.loads(tags.get(PARAMS_TAG, "{}")),
                mlflow_run_id=run.info.run_id,
                epochs=max(history, default=0),
                error=tags.get(ERROR_TAG),
                intermediate=history,
                values=tuple(json.loads(tags[VALUES_TAG])) if VALUES_TAG in tags else None,
            ))
        return sorted(found, key=lambda t: t.number)
