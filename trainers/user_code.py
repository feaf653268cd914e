"""The user's own code, named `package.module:function` (a model builder, a data function).

It imports as `python -m` would, from the folder the command runs in. A sweep records that folder
(`code_folder`) with its space and exports, so `kerasweep train EXPORT` imports the same code from any
folder; a module installed in the environment records nothing (it imports from anywhere).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any


def make_importable(folder: str | None = None) -> None:
    """Put `folder` (a recorded code folder) and the working folder first on the import path."""
    for path in (os.getcwd(), folder):
        if path and path not in sys.path:
            sys.path.insert(0, path)


def import_object(ref: str, folder: str | None = None) -> Any:
    """The object `package.module:function` names; raises ImportError or AttributeError as importing does."""
    module_name, _, name = ref.partition(":")
    make_importable(folder)
    return getattr(importlib.import_module(module_name), name)


def code_folder(*refs: str) -> str | None:
    """The folder the first user module among `refs` imports from, when it imports only thanks to the
    working folder (None for names of bundled builders and datasets, files, and installed packages)."""
    for ref in refs:
        module_name, sep, _ = ref.partition(":")
        if not sep or "/" in module_name or os.sep in module_name:
            continue
        make_importable()
        try:
            spec = importlib.util.find_spec(module_name.split(".")[0])
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        if spec.origin and spec.origin not in ("built-in", "frozen"):
            where = Path(spec.origin).parent
            folder = where.parent if Path(spec.origin).name == "__init__.py" else where
        elif spec.submodule_search_locations:  # a namespace package: a folder without __init__.py
            folder = Path(next(iter(spec.submodule_search_locations))).parent
        else:
            continue
        installed = {str(Path(p).resolve()) for p in sys.path if p and p != os.getcwd()}
        if str(folder.resolve()) not in installed or str(folder.resolve()) == str(Path.cwd().resolve()):
            return str(folder.resolve())
    return None
