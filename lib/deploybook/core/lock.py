"""One rollout or rollback per environment at a time: a file lock that names its holder.

`environment_lock` makes a second rollout or rollback of the same environment fail fast
with `LockHeld`, naming who holds it; `run_lock` is that lock for a runbook's run, kept
under ``<outputs>/<env>/.locks`` so runbooks 03 and 05 share it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from deploybook.core import paths
from deploybook.core.clock import utcnow
from deploybook.core.procs import group_members, pid_alive, same_process, start_time
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, LockHeld

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


class FileLock:
    """An exclusive flock on a file that also says who holds it (pid, host, operator...).

    The kernel releases a flock when its holder dies, so a lock is never stuck; the JSON
    content is what lets the loser name the winner. A file whose content names a dead
    holder (pid and start time) but whose flock is free is stale, and is taken over with a
    warning once no process of the holder's process group is left.
    """

    def __init__(self, path: str | os.PathLike[str], **info: Any) -> None:
        self.path = Path(path)
        self.info = {k: scrub(str(v)) for k, v in info.items() if v is not None}
        self._fd: int | None = None
        self.holder: dict[str, Any] | None = None
        self.took_over: dict[str, Any] | None = None

    def _read_holder(self, fd: int) -> dict[str, Any]:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        try:
            holder = json.loads(raw.decode("utf-8", "replace")) if raw.strip() else {}
        except json.JSONDecodeError:
            holder = {}
        return holder if isinstance(holder, dict) else {}

    def acquire(self) -> FileLock:
        if self._fd is not None:
            raise LockHeld(f"{self.path}: this FileLock object is already held")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise LockHeld(self._held_message(holder)) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            previous = self._read_holder(fd)
            if previous:
                self._refuse_while_running(previous)
                self.took_over = previous
                pid = previous.get("pid")
                same_host = previous.get("host") == socket.gethostname()
                gone = (
                    "its process is gone"
                    if (same_host and isinstance(pid, int) and not pid_alive(pid))
                    else "its lock was released without clean-up"
                )
                warnings.warn(
                    f"{self.path}: taking over a stale lock ({gone}) left by "
                    f"{_describe_holder(previous)}",
                    stacklevel=3,
                )
            content = {
                "pid": os.getpid(),
                "pid_start": start_time(os.getpid()),
                "pgid": os.getpgrp(),
                "host": socket.gethostname(),
                "started_at": utcnow(),
                **self.info,
            }
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(content, sort_keys=True).encode())
            os.fsync(fd)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._fd = fd
        self.holder = content
        return self

    def release(self) -> None:
        """Empty the file (so nobody mistakes it for stale) and drop the flock."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _refuse_while_running(self, previous: dict[str, Any]) -> None:
        """LockHeld while the dead holder's process, or any process it started, still runs.

        A kernel killed with -9 drops its flock at once, but the step commands it started
        (in its process group) may still be building: taking over now would overlap them.
        """
        if previous.get("host") != socket.gethostname():
            return  # another machine's processes cannot be judged from here
        pid, pgid = previous.get("pid"), previous.get("pgid")
        if isinstance(pid, int) and pid != os.getpid():
            started = previous.get("pid_start")
            if same_process(pid, started if isinstance(started, int) else None):
                raise LockHeld(
                    f"{self.path.stem} is locked by {_describe_holder(previous)}: the lock "
                    f"file was released but that process still runs; let it finish. "
                    f"Lock file: {self.path}"
                )
        if isinstance(pgid, int) and pgid != os.getpgrp():
            survivors = group_members(pgid)
            if survivors:
                shown = ", ".join(map(str, survivors[:8]))
                raise LockHeld(
                    f"{self.path.stem}: its holder ({_describe_holder(previous)}) is gone but "
                    f"processes it started still run (pid {shown}; process group {pgid}): "
                    f"wait for them to finish or stop them with `kill -- -{pgid}`, then run "
                    f"again. Lock file: {self.path}"
                )

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _held_message(self, holder: dict[str, Any]) -> str:
        who = _describe_holder(holder) if holder else "another process (no details recorded yet)"
        hint = "wait for it to finish"
        if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            hint = (
                "it is held by this very process (the notebook kernel): let the earlier cell "
                "finish, or restart the kernel"
            )
        return f"{self.path.stem} is locked by {who}; {hint}. Lock file: {self.path}"

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe_holder(holder: dict[str, Any]) -> str:
    parts = []
    if holder.get("runbook"):
        parts.append(f"runbook {holder['runbook']}")
    if holder.get("run_id"):
        parts.append(f"run {holder['run_id']}")
    if holder.get("operator"):
        parts.append(f"operator {holder['operator']}")
    parts.append(f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}")
    since = holder.get("started_at", "an unknown time")
    return scrub(f"{', '.join(parts)} since {since}")


@contextmanager
def environment_lock(
    lock_dir: str | os.PathLike[str],
    env: str,
    *,
    operator: str | None = None,
    runbook: str | None = None,
    run_id: str | None = None,
) -> Iterator[FileLock]:
    """Hold ``<lock_dir>/<env>.lock`` for a rollout or rollback; a second holder gets LockHeld."""
    if not isinstance(env, str) or not _NAME.match(env):
        raise ConfigError(f"environment_lock: {env!r} is not a valid environment name")
    lock = FileLock(
        Path(lock_dir) / f"{env}.lock",
        env=env,
        operator=operator,
        runbook=runbook,
        run_id=run_id,
    )
    with lock:
        yield lock


def lock_dir(env: str) -> Path:
    """Where an environment's rollout/rollback lock lives: ``<outputs>/<env>/.locks``."""
    return paths.outputs_dir() / env / ".locks"


class LockOwner(Protocol):
    """What the lock records about its holder: a runbook's run (`session.Runbook`)."""

    name: str
    env: str
    operator: str
    run_id: str | None


@contextmanager
def run_lock(run: LockOwner) -> Iterator[FileLock]:
    """Hold the environment's lock for a rollout or rollback; a second holder gets LockHeld."""
    with environment_lock(
        lock_dir(run.env), run.env, operator=run.operator, runbook=run.name, run_id=run.run_id
    ) as held:
        yield held
