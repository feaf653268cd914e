"""Who runs a trial, and when another process may call it dead without waiting for the heartbeat.

A pid names a process only on the machine and in the PID namespace where it was read: two containers
with one hostname (or two machines named alike) hold the same pids for different processes, and a
command that read "pid 17 is gone" there failed the live trials of the other. A trial's owner is
recorded with that scope (the machine's boot id and the PID namespace); a process calls an owner dead
from its pid only within the same scope, and leaves every other trial to the storage's heartbeat.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from typing import Mapping

OWNER_ATTR = "kerasweep.owner"  # "host:pid", for people and for a command's own workers
SCOPE_ATTR = "kerasweep.owner_scope"  # where that pid means something: boot id and PID namespace


@functools.cache
def scope() -> str:
    """This process's pid scope: the boot id (a new one per machine and boot) and the PID namespace."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # not Linux: the host name is all there is, and pids are never trusted across it
        boot = f"no-boot-id:{socket.gethostname()}:{os.getpid()}"
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # 'pid:[4026531836]'
    except OSError:
        namespace = "pid:?"
    return f"{boot}/{namespace}"


def this_process(pid: int | None = None) -> dict[str, str]:
    """The owner attributes of this process (or of `pid`, a child in the same PID namespace)."""
    return {OWNER_ATTR: owner_name(pid), SCOPE_ATTR: scope()}


def owner_name(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def has_owner(attrs: Mapping[str, object]) -> bool:
    return OWNER_ATTR in attrs


def checkable(attrs: Mapping[str, object]) -> bool:
    """Whether this process can tell from the owner's pid whether it lives (same machine, same namespace)."""
    return attrs.get(SCOPE_ATTR) == scope() and str(attrs.get(OWNER_ATTR, "")).startswith(f"{socket.gethostname()}:")


def known_dead(attrs: Mapping[str, object]) -> bool:
    """The owner is in this process's scope and its pid no longer exists. Anything else (another
    machine, another namespace, a store written before scopes were recorded) is for the heartbeat."""
    if not checkable(attrs):
        return False
    pid = str(attrs[OWNER_ATTR]).rpartition(":")[2]
    return pid.isdigit() and not alive(int(pid))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
