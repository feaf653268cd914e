"""What every benchmark shares: the machine it ran on, where results go, the printed table."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """Cores, memory and accelerator: docs/benchmarks.md quotes results with these."""
    memory_gib = None
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    gpu = "none"
    if Path("/proc/driver/nvidia/gpus").exists():
        gpu = ", ".join(p.name for p in Path("/proc/driver/nvidia/gpus").iterdir()) or "nvidia"
    return {"cpus": os.cpu_count(), "memory_gib": memory_gib, "gpu": gpu, "platform": platform.platform(),
            "python": platform.python_version(), "date": dt.date.today().isoformat()}


def write_results(store: Path, name: str, payload: dict[str, Any]) -> Path:
    """`<store>/bench/<name>.json`, with the machine it ran on."""
    out = store / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str))
    return out


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """A rich table; the first column left-aligned, numbers right-aligned."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.width = max(console.width, 140)  # a log or a pipe: runner names whole, not cut to 80 columns
    console.print(table)
