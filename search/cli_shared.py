"""What every kerasweep command shares: the consoles, the `--store` option, and one way to report errors
(kerasweep's own as one line with its exit code; a full disk or an unreachable MLflow server too)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from kerasweep.search.config import DEFAULT_STORE
from kerasweep.search.errors import KerasweepError
from kerasweep.search.interrupts import terminated
from kerasweep.search.outages import outage

console = Console()
err_console = Console(stderr=True)

store_option = click.option(
    "--store", type=click.Path(path_type=Path), envvar="KERASWEEP_STORE", default="runs", show_default=True,
    help="Folder for all local state: Optuna storage, MLflow store, checkpoints, exports (env KERASWEEP_STORE).",
)


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn kerasweep's own errors into one clear message and the right exit code, no traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return command(*args, **kwargs)
            except (KerasweepError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a full disk or an MLflow server gone, before or after the sweep: one line
                error = outage(kwargs.get("store") or DEFAULT_STORE, os.environ.get("MLFLOW_TRACKING_URI"), exc)
                if error is None:
                    raise
                raise error from None
        except KerasweepError as exc:
            for line in str(exc).splitlines():  # user text may hold [brackets]: never read as markup
                err_console.print(f"[red]error:[/] {escape(line)}", highlight=False, markup=True, soft_wrap=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            if terminated():
                err_console.print("Stopped by SIGTERM. Re-run the same command to resume.")
                sys.exit(143)
            err_console.print("Interrupted. Re-run the same command to resume.")
            sys.exit(130)

    return wrapper
