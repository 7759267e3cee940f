"""Processes: is one alive, is it still the same one, its group and its tree.

One answer for the lock, the runner, commands, the sandbox stack and its daemon.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` runs; a zombie or a reaped child of ours counts as gone."""
    if not pid or pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # our own child, now reaped
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    with contextlib.suppress(OSError, IndexError):
        if Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1].split()[0] == "Z":
            return False
    return True


def start_time(pid: int | None) -> int | None:
    """When ``pid`` started (clock ticks since boot), to tell it from a later process that
    reuses its number; None when there is no such process."""
    if not pid or pid <= 0:
        return None
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def same_process(pid: int | None, started: int | None) -> bool:
    """True while the process ``pid`` that started at ``started`` still runs."""
    if not pid_alive(pid):
        return False
    return started is None or start_time(pid) == started


def group_members(pgid: int | None) -> list[int]:
    """The live processes of process group ``pgid`` (zombies excluded)."""
    if not pgid or pgid <= 0:
        return []
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return sorted(members)


def kill_group(pgid: int | None) -> list[int]:
    """SIGKILL every process of group ``pgid`` (never our own); returns who was there."""
    if not pgid or pgid <= 0 or pgid == os.getpgrp():
        return []
    members = group_members(pgid)
    if members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return members


def descendants(pid: int) -> list[int]:
    """Every descendant of ``pid`` now (children, grandchildren…)."""
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def kill_tree(pid: int, sig: int) -> None:
    """Send ``sig`` to ``pid`` and to every descendant it has now."""
    for target in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)


def die_with_parent(interval_s: float = 0.2) -> bool:
    """In a kernel that leads its own process group: when its parent (`deploybook run`)
    dies, SIGKILL the whole group (the kernel and every step command it started).

    Without it a killed runner leaves its kernel (until ipykernel notices) and the build
    that kernel started running under nobody's lock. Returns False, doing nothing, when
    this process does not lead its group (its group is someone else's to kill).
    """
    if os.getpgrp() != os.getpid():
        return False
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="deploybook-parent-watch", daemon=True).start()
    return True
