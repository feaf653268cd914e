"""Read a space or export file as YAML with limits, so a hostile file fails fast with one line.

YAML's safe loader cannot run code, but it can still be made to eat memory and time: an alias
"bomb" (`a: &a [x, x]`, `b: &b [*a, *a]`, ...) is a few hundred bytes that expand to billions of
values once anything walks them (validation, logging, a repr). So the document is composed first
(aliases stay shared, which is cheap), its expanded size is counted with memoisation, and only a
document within the limits is constructed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kerasweep.search.errors import UserInputError, yaml_problem

MAX_FILE_BYTES = 1_000_000  # a space or export file is a page of text; a megabyte is far beyond any
MAX_VALUES = 100_000  # YAML values once every alias is expanded; the biggest shipped space has about 150


def read_yaml(path: Path) -> Any:
    """The YAML document in `path`, or UserInputError naming the file and the limit it breaks."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read ({exc.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise UserInputError(f"{path}: file is {size} bytes; a space or export file may be at most {MAX_FILE_BYTES}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read ({exc.strerror})") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        count = _expanded_size(node, {})
        if count > MAX_VALUES:
            raise UserInputError(f"{path}: expands to {count} YAML values (aliases counted at every use); "
                                 f"at most {MAX_VALUES}: remove the repeated aliases")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path}: {yaml_problem(exc)}") from None
    except RecursionError:
        raise UserInputError(f"{path}: nested too deeply; a space or export file is a few levels deep") from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """Values under `node` with every alias expanded; shared nodes are counted once and remembered."""
    known = seen.get(id(node))
    if known is not None:
        return known
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, seen) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, seen) + _expanded_size(v, seen) for k, v in node.value)
    else:
        size = 1
    seen[id(node)] = size
    return size
