"""`kerasweep service up | status | down | join` and `kerasweep submit | jobs | logs | cancel`: the team
service's commands, printers over `search.service`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from kerasweep.search.cli_shared import console, err_console, reports_errors
from kerasweep.search.errors import UserInputError

dir_option = click.option("--dir", "folder", type=click.Path(path_type=Path), envvar="KERASWEEP_SERVICE_DIR",
                          default="service", show_default=True,
                          help="Folder holding all of the service's state (env KERASWEEP_SERVICE_DIR).")


@click.group()
def service() -> None:
    """A team service: PostgreSQL, an MLflow tracking server and a Ray head, all authenticated."""


@service.command()
@dir_option
@click.option("--host", help="The address every component binds to (one of this machine's; default 127.0.0.1, "
                             "then the folder's).")
@click.option("--port-base", type=int, help="PostgreSQL on this port, MLflow on +1, Ray's GCS on +2, Ray's Job API on "
              "+3, Ray's agent and client server on +4 and +5 (default 7100, then the folder's).")
@reports_errors
def up(folder: Path, host: str | None, port_base: int | None) -> None:
    """Start every component that is not running; write DIR/client.env for clients."""
    from kerasweep.search.service.layout import ServiceDir
    from kerasweep.search.service.manage import up as start

    where = ServiceDir(folder)
    started = start(where, host, port_base)
    for component in started:
        how = "started" if component.started_now else "already up"
        console.print(f"{component.name:9} {component.address}  ({how})", highlight=False)
    if not any(c.started_now for c in started):
        console.print(f"The service in {where.root} was already up: nothing started twice.")
    console.print(f"Clients: copy {where.client_env} (mode 0600, it holds the secrets), then "
                  f"`set -a; . client.env; set +a`.", highlight=False)


@service.command(name="status")
@dir_option
@reports_errors
def service_status(folder: Path) -> None:
    """Each component: up or down, with its address (exit 1 when one is down)."""
    from kerasweep.search.service.layout import ServiceDir
    from kerasweep.search.service.manage import status

    found = status(ServiceDir(folder))
    for component in found:
        console.print(f"{component.name:9} {component.address}  {'up' if component.up else 'DOWN'}", highlight=False)
    if not all(c.up for c in found):
        raise SystemExit(1)


@service.command()
@dir_option
@reports_errors
def down(folder: Path) -> None:
    """Stop everything the service started (its data, secrets and client.env stay)."""
    from kerasweep.search.service.layout import ServiceDir
    from kerasweep.search.service.manage import down as stop

    stopped = stop(ServiceDir(folder))
    console.print(f"Stopped: {', '.join(stopped) or 'nothing was running'}.")


@service.command()
@click.option("--head", envvar="KERASWEEP_RAY_HEAD", required=True,
              help="The Ray head's address, host:port (env KERASWEEP_RAY_HEAD, from client.env).")
@dir_option
@click.option("--host", default=None, help="This node's address (default: Ray's choice).")
@reports_errors
def join(head: str, folder: Path, host: str | None) -> None:
    """Start a Ray worker node on this machine that takes the service's trials (token: RAY_AUTH_TOKEN)."""
    from kerasweep.search.service.nodes import join as start_node

    pid, log = start_node(head, Path(folder), host)
    console.print(f"Worker node joined {head} (pid {pid}, log {log}); `kerasweep service leave --dir {folder}` "
                  "stops it.", highlight=False)


@service.command()
@dir_option
@reports_errors
def leave(folder: Path) -> None:
    """Stop the worker node `join` started with this --dir."""
    from kerasweep.search.service.nodes import leave as stop_node

    console.print("Worker node stopped." if stop_node(Path(folder)) else "No worker node was running.")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("space")
@click.option("--name", help="Sweep name (default: the space's name); the job's name on the service.")
@click.option("--trials", type=click.IntRange(min=1), help="Budget of complete + pruned trials (overrides the space).")
@click.option("--code", type=click.Path(path_type=Path, file_okay=False, exists=True), default=".",
              help="The folder sent as the job's working directory: the space file and your builder module.")
@click.argument("sweep_args", nargs=-1, type=click.UNPROCESSED)
@reports_errors
def submit(space: str, name: str | None, trials: int | None, code: Path, sweep_args: tuple[str, ...]) -> None:
    """Send a sweep of SPACE to the service (`kerasweep sweep SPACE --engine ray` as a Ray job); any other
    `kerasweep sweep` flag after SPACE goes with it."""
    from kerasweep.search.service.jobs import submit as send
    from kerasweep.search.space import load_space, resolve_space_path

    parsed = load_space(space)  # bad input is one line here, before anything is sent
    code = code.resolve()
    path = resolve_space_path(space).resolve()
    if Path(space).suffix in (".yaml", ".yml") or os.sep in space:
        if not path.is_relative_to(code):
            raise UserInputError(f"SPACE: {space} is outside --code {code}; the job sees only that folder: move "
                                 "the space file into it, or pass --code with a folder holding both")
        space = str(path.relative_to(code))
    args = [*(("--trials", str(trials)) if trials else ()), *sweep_args]
    sent = send(space, name or parsed.name, trials or parsed.budget.trials, args, code,
                direction=parsed.objective.direction)
    console.print(f"Submitted sweep [bold]{sent}[/]: `kerasweep jobs`, `kerasweep logs {sent} --follow`, "
                  f"`kerasweep cancel {sent}`.")


@click.command(name="jobs")
@reports_errors
def list_jobs() -> None:
    """The service's sweep jobs: state, trials done / budget, best so far, age."""
    from kerasweep.search.service.jobs import jobs

    rows = jobs()
    if not rows:
        console.print("No sweep jobs on the service.")
    for row in rows:
        budget = f"/{row.budget}" if row.budget else ""
        best = f"best {row.best:.4f}" if row.best is not None else "best -"
        console.print(f"{row.name:24} {row.state:10} {row.done}{budget} trials  {best}  {_age(row.age_s)}",
                      highlight=False)


@click.command()
@click.argument("name")
@click.option("--follow", is_flag=True, help="Keep printing until the job ends.")
@reports_errors
def logs(name: str, follow: bool) -> None:
    """The output of sweep job NAME."""
    from kerasweep.search.service.jobs import logs as read

    for chunk in read(name, follow):
        click.echo(chunk, nl=False)


@click.command()
@click.argument("name")
@reports_errors
def cancel(name: str) -> None:
    """Stop sweep job NAME; `kerasweep submit` of the same sweep later resumes it."""
    from kerasweep.search.service.jobs import cancel as stop

    started = time.monotonic()
    state = stop(name)
    console.print(f"Sweep job {name}: {state} ({time.monotonic() - started:.0f} s).")
    if state in ("PENDING", "RUNNING"):
        err_console.print(f"[yellow]warning:[/] {name} is still {state} after the stop request")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
