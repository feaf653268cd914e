"""Sweeps on the team service, from a laptop: submit, list, logs, cancel, through Ray's Job API.

A submitted sweep is `kerasweep sweep SPACE --engine ray` run as a Ray job on the service's head: its
trials spread over every node that joined, its runs and artifacts go to the service's MLflow, and the
job's `submission_id` is the sweep's name. The client needs only `client.env` (the Job API address, the
Ray token and the MLflow credentials); nothing here keeps state of its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerasweep.search.errors import KerasweepError, UserInputError

SERVICE_ENV = "KERASWEEP_SERVICE"
LIVE = ("PENDING", "RUNNING")
SWEEP_KEY = "kerasweep.budget"  # in a sweep job's metadata; `run_on_head`'s short jobs have none
EXPORT_MARK, EXPORT_END = "# kerasweep export: ", "# end of kerasweep export"
IGNORED = [".git", ".venv", "runs", "__pycache__", "*.pyc", ".ipynb_checkpoints"]  # never uploaded


@dataclass(frozen=True)
class JobRow:
    """One sweep job as `kerasweep jobs` shows it."""

    name: str
    state: str
    done: int
    budget: int | None
    best: float | None
    age_s: float
    message: str = ""


def job_client() -> Any:
    """Ray's JobSubmissionClient on the service named by KERASWEEP_SERVICE (its token: RAY_AUTH_TOKEN)."""
    address = os.environ.get(SERVICE_ENV)
    if not address:
        raise UserInputError(f"{SERVICE_ENV}: not set; source the service's client.env first "
                             "(set -a; . DIR/client.env; set +a)")
    if not os.environ.get("RAY_AUTH_TOKEN"):
        raise UserInputError("RAY_AUTH_TOKEN: not set; source the service's client.env (it holds the token)")
    import logging

    from ray.job_submission import JobSubmissionClient

    for logger in ("ray", "ray.dashboard.modules.dashboard_sdk"):  # not "Uploading package ..." on every submit
        logging.getLogger(logger).setLevel(logging.WARNING)
    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError) as exc:
        raise UserInputError(f"{SERVICE_ENV}: the service's Job API at {address} does not answer "
                             f"({str(exc).splitlines()[0][:200]}); is `kerasweep service up` running there?") from None


def submit(space: str, name: str, budget: int, sweep_args: Sequence[str], code: Path,
           direction: str = "maximize") -> str:
    """Send `kerasweep sweep SPACE --engine ray --name NAME ARGS` as a Ray job named NAME, `code` (the user's
    folder, holding the space file and any builder module) as its working directory; returns NAME.

    A job of that name still running is refused; one that ended (cancelled, failed, done) is replaced: the
    sweep's truth is in MLflow and the head's store, so the new job resumes it."""
    client = job_client()
    existing = _job_info(client, name)
    if existing is not None and str(existing.status) in LIVE:
        raise UserInputError(f"--name: sweep {name!r} is already running on the service ({existing.status}); "
                             f"watch it with `kerasweep logs {name} --follow` or stop it with `kerasweep cancel {name}`")
    if existing is not None:
        client.delete_job(name)  # Ray keeps one job per submission_id: the ended one makes way for its resume
    entrypoint = " ".join(["kerasweep", "sweep", _quote(space), "--engine", "ray", "--name", _quote(name),
                           *(_quote(arg) for arg in sweep_args)])
    return _submit(client, entrypoint=entrypoint, submission_id=name,
                   runtime_env={"working_dir": str(code), "excludes": IGNORED},
                   metadata={SWEEP_KEY: str(budget), "kerasweep.space": space, "kerasweep.direction": direction})


def _submit(client: Any, retry_s: float = 60.0, **job: Any) -> str:
    """`submit_job`, again while Ray says no agent is ready yet (a node that just joined or a head that just
    started); any other refusal is one line."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            return client.submit_job(**job)
        except RuntimeError as exc:
            if "No available agent" in str(exc) and time.monotonic() < deadline:
                time.sleep(2)
                continue
            raise KerasweepError(f"{SERVICE_ENV}: the service refused the job: {str(exc).splitlines()[0][:300]}") \
                from None


def jobs() -> list[JobRow]:
    """Every sweep job on the service, newest first, with its progress read from the service's MLflow."""
    client = job_client()
    found = [job for job in client.list_jobs() if job.submission_id and SWEEP_KEY in (job.metadata or {})]
    progress = _progress({job.submission_id: (job.metadata or {}).get("kerasweep.direction", "maximize")
                          for job in found})
    rows = []
    for job in sorted(found, key=lambda j: j.start_time or 0, reverse=True):
        done, best = progress.get(job.submission_id, (0, None))
        budget = (job.metadata or {}).get("kerasweep.budget")
        rows.append(JobRow(job.submission_id, str(job.status), done, int(budget) if budget else None, best,
                           time.time() - (job.start_time or 0) / 1000, job.message or ""))
    return rows


def logs(name: str, follow: bool = False) -> Iterator[str]:
    """The job's output so far, or (`follow`) as it comes until the job ends."""
    client = job_client()
    if _job_info(client, name) is None:
        raise UserInputError(f"NAME: no sweep job {name!r} on the service; `kerasweep jobs` lists them")
    if not follow:
        yield client.get_job_logs(name)
        return
    stream = client.tail_job_logs(name)
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(stream.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.close()


def cancel(name: str) -> str:
    """Stop a running sweep job (Ray sends SIGTERM: the trial in flight ends FAILED in both stores, the parent
    run KILLED, and a later `submit` of the same sweep resumes it); returns the job's state."""
    client = job_client()
    info = _job_info(client, name)
    if info is None:
        raise UserInputError(f"NAME: no sweep job {name!r} on the service; `kerasweep jobs` lists them")
    if str(info.status) not in LIVE:
        return str(info.status)
    client.stop_job(name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = str(client.get_job_status(name))
        if status not in LIVE:
            return status
        time.sleep(1)
    return str(client.get_job_status(name))


def on_service(name: str | None, store: Path) -> bool:
    """Whether a command about sweep `name` is for the service: a client (KERASWEEP_SERVICE set) whose own
    store has no such sweep."""
    from kerasweep.search.store import Store

    return bool(os.environ.get(SERVICE_ENV)) and (name is None or not Store(store).record(name).exists())


def run_on_head(args: Sequence[str], label: str, timeout_s: float = 600.0) -> str:
    """Run `kerasweep ARGS` on the service's head as a short Ray job (where the sweeps' stores are) and return
    its output; a failure raises its last line with the command's own exit code."""
    import secrets

    client = job_client()
    job = f"{label}-{secrets.token_hex(4)}"
    _submit(client, entrypoint=" ".join(["kerasweep", *(_quote(arg) for arg in args)]), submission_id=job)
    deadline = time.monotonic() + timeout_s
    while str(client.get_job_status(job)) in LIVE and time.monotonic() < deadline:
        time.sleep(0.5)
    info = client.get_job_info(job)
    output = client.get_job_logs(job)
    if str(info.status) in LIVE:
        client.stop_job(job)
    client.delete_job(job) if str(client.get_job_status(job)) not in LIVE else None
    if str(info.status) != "SUCCEEDED":
        lines = [line for line in output.splitlines() if line.strip()]
        error = KerasweepError(lines[-1].removeprefix("error: ") if lines else f"{label} on the service: {info.message}")
        code = re.search(r"exit code (\d+)", info.message or "")
        error.exit_code = int(code.group(1)) if code else 1
        raise error
    return output


def exports_in(output: str) -> list[tuple[str, str]]:
    """(file name, YAML text) of each config that `kerasweep export --stdout` printed, in order."""
    found, name, lines = [], None, []
    for line in output.splitlines():
        if line.startswith(EXPORT_MARK):
            name, lines = line.removeprefix(EXPORT_MARK).strip(), []
        elif line == EXPORT_END and name is not None:
            found.append((name, "\n".join(lines) + "\n"))
            name = None
        elif name is not None:
            lines.append(line)
    return found


def _job_info(client: Any, name: str) -> Any | None:
    try:
        return client.get_job_info(name)
    except RuntimeError as exc:
        if "does not exist" in str(exc) or "404" in str(exc):
            return None
        raise


def _progress(names: dict[str, str]) -> dict[str, tuple[int, float | None]]:
    """(trials complete or pruned, best value) per sweep (name: the objective's direction), from the trial
    runs in the service's MLflow."""
    if not names or not os.environ.get("MLFLOW_TRACKING_URI"):
        return {}
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    found: dict[str, tuple[int, float | None]] = {}
    for name, direction in names.items():
        runs = client.search_runs(ids, filter_string=f"tags.`kerasweep.sweep` = '{name}' and "
                                  "tags.`kerasweep.role` = 'trial'", max_results=5000)
        ended = [r for r in runs if r.data.tags.get("kerasweep.state") in ("complete", "pruned")]
        values = [float(r.data.tags["kerasweep.value"]) for r in ended if "kerasweep.value" in r.data.tags]
        best = (max if direction == "maximize" else min)(values) if values else None
        found[name] = (len(ended), best)
    return found


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
