"""The kernel of a headless run: which process group is the run's, and what a crash says.

jupyter_client starts each kernel as the leader of a new process group; step commands stay
in it (`systems.commands.run_command`). `GroupTrackingKernelManager` remembers each
kernel's group, so when a kernel dies (kill -9, out of memory) the runner can stop
everything it had started instead of leaving a build running under nobody's lock.
"""

from __future__ import annotations

import json
import subprocess
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from deploybook.core import procs

# Run in the kernel at start-up (binding no name in the notebook's namespace): if
# `deploybook run` itself is killed, its kernel and everything the kernel started go too.
DIE_WITH_RUNNER = (
    "--IPKernelApp.exec_lines=__import__('deploybook.core.procs').core.procs.die_with_parent();"
)


# The kernel's arguments after its kernelspec's: its own start-up chatter is not part of the
# record, and it dies with the runner.
ARGUMENTS = ("--IPKernelApp.log_level=ERROR", DIE_WITH_RUNNER)
# A kernel started ahead of its run also imports, while it waits, what every runbook's start
# cell and figures import (about a second of a run's time otherwise): modules only, no name
# bound in the notebook's namespace, no execution counted, nothing that reads the run's
# variables at import. The same exec line as DIE_WITH_RUNNER (one `exec_lines` value),
# dying with the runner first.
WARM_IMPORTS = ("deploybook", "matplotlib.pyplot", "httpx", "psycopg")
_WARM = "".join(f"__import__({name!r});" for name in WARM_IMPORTS)
_AHEAD_ARGUMENTS = tuple(f"{a}{_WARM}" if a == DIE_WITH_RUNNER else a for a in ARGUMENTS)
# What nbclient adds when it starts an IPython kernel itself (no history file on disk).
_NBCLIENT_ARGUMENTS = ("--HistoryManager.hist_file=:memory:",)
# Set in a started kernel by the engine once the run starts (it names the run's record).
RUN_VARIABLES = ("DEPLOYBOOK_RECORD",)


class GroupTrackingKernelManager(AsyncKernelManager):
    """An `AsyncKernelManager` that records the process group of each kernel it starts."""

    started_groups: ClassVar[list[int]]

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        await super()._async_launch_kernel(kernel_cmd, **kw)
        pgid = getattr(self.provisioner, "pgid", None)
        if isinstance(pgid, int):
            self.started_groups.append(pgid)


def tracking_manager() -> type[GroupTrackingKernelManager]:
    """A manager class of its own for one run (its ``started_groups`` start empty)."""
    return type("RunKernelManager", (GroupTrackingKernelManager,), {"started_groups": []})


def stop_groups(manager: type[GroupTrackingKernelManager]) -> list[int]:
    """SIGKILL what is left of every group the run's kernels led; the pids that were there."""
    stopped: list[int] = []
    for pgid in manager.started_groups:
        stopped += procs.kill_group(pgid)
    return stopped


# How long a released kernel may take to exit before SIGTERM, then as long again before
# SIGKILL: jupyter_client's schedule (half its ``shutdown_wait_time`` each).
EXIT_GRACE_S = 2.5


def release(km: AsyncKernelManager) -> subprocess.Popen[bytes] | None:
    """Ask an idle kernel to shut down and let go of it at once; returns its process.

    nbclient's own cleanup interrupts the kernel, requests the shutdown and then polls until
    the process has exited — about half a second (interpreter teardown) that a run spent
    waiting after its last cell, and 2.5 s (then SIGTERM) when the kernel is slower to go.
    A kernel whose cells have all answered needs no interrupt; its exit can be awaited
    while the record is saved and rendered (`Reaper`)."""
    process = getattr(km.provisioner, "process", None)
    run_sync(km.request_shutdown)()
    run_sync(km.cleanup_resources)()  # the request is delivered within the socket's linger
    return process


class Reaper(threading.Thread):
    """Waits, off the caller's thread, for a released kernel to exit (SIGTERM, then SIGKILL
    on jupyter_client's schedule), then SIGKILLs what is left of the run's groups."""

    def __init__(
        self, process: subprocess.Popen[bytes] | None, manager: type[GroupTrackingKernelManager]
    ) -> None:
        super().__init__(name="kernel-reaper", daemon=True)
        self.process, self.manager = process, manager
        self.stopped: list[int] = []

    @classmethod
    def begin(
        cls, process: subprocess.Popen[bytes] | None, manager: type[GroupTrackingKernelManager]
    ) -> Reaper:
        reaper = cls(process, manager)
        reaper.start()
        return reaper

    def run(self) -> None:
        if self.process is not None:
            for escalate in (self.process.terminate, self.process.kill, None):
                try:
                    self.process.wait(timeout=EXIT_GRACE_S)
                    break
                except subprocess.TimeoutExpired:
                    if escalate is not None:
                        escalate()
        self.stopped = stop_groups(self.manager)

    def finish(self) -> list[int]:
        """Wait until the kernel and everything it started are gone; who had to be killed."""
        self.join()
        return self.stopped


@dataclass
class Prestarted:
    """A kernel started for a run that has not begun: its own manager class (so its process
    group is stopped with its run's), and the environment it was started with."""

    manager: type[GroupTrackingKernelManager]
    km: GroupTrackingKernelManager
    env: dict[str, str]
    cwd: str
    taken: bool = False  # handed to its run (which stops it)

    def fits(self, env: Mapping[str, str], cwd: str) -> bool:
        """Whether this kernel is the one the run would start: the same environment (but
        the run's own variables, set later) and working directory."""
        return cwd == self.cwd and _without_run_variables(env) == self.env

    def stop(self) -> list[int]:
        """Stop an unused kernel now (nothing ran in it) and whatever is left of its group."""
        try:
            if run_sync(self.km.is_alive)():
                run_sync(self.km.shutdown_kernel)(now=True)
        except RuntimeError:
            pass  # already gone
        finally:
            run_sync(self.km.cleanup_resources)()
        return stop_groups(self.manager)


def _without_run_variables(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in RUN_VARIABLES}


def prestart(env: Mapping[str, str], cwd: str, kernel_name: str = "python3") -> Prestarted:
    """Launch a kernel the way papermill/nbclient would for a run in ``cwd`` with ``env``
    (same kernelspec, arguments — plus `WARM_IMPORTS` —, environment, working directory, its
    own process group); returns at once, while the kernel boots."""
    manager = tracking_manager()
    km = manager(kernel_name=kernel_name)
    base = _without_run_variables(env)
    run_sync(km.start_kernel)(
        extra_arguments=[*_AHEAD_ARGUMENTS, *_NBCLIENT_ARGUMENTS], cwd=cwd, env=dict(base)
    )
    return Prestarted(manager, km, base, cwd)


def prestart_into(
    spares: list[Prestarted], env: Mapping[str, str], cwd: str, kernel_name: str = "python3"
) -> None:
    """`prestart` for a run under way: a kernel that fails to launch is only a kernel the
    next run starts itself, never this run's failure."""
    try:
        spares.append(prestart(env, cwd, kernel_name))
    except Exception as exc:  # noqa: BLE001 - any launch failure means "start it later"
        warnings.warn(f"could not start the next run's kernel ahead: {exc}", stacklevel=2)


def running_cell(record: Path) -> str:
    """Which cell the kernel was running when it died ("cell 7 (## Build)"), from the
    partial record papermill saved; "an unknown cell" when it cannot tell."""
    try:
        cells = json.loads(record.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return "an unknown cell"
    # papermill marks every cell "completed" once the run ends, crashed or not: the cell
    # that was running is the last one it had started.
    started = [
        (number, cell)
        for number, cell in enumerate(cells, 1)
        if cell.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    if not started:
        return "an unknown cell"
    number, cell = started[-1]
    first = next((ln for ln in _source(cell).splitlines() if ln.strip()), "")
    return f"cell {number} ({first.strip()[:60]})" if first else f"cell {number}"


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def crash_message(record: Path, stopped: list[int]) -> str:
    """The one line a lead reads instead of nbclient's DeadKernelError traceback."""
    after = f"; {len(stopped)} process(es) it had started were stopped" if stopped else ""
    return (
        f"the kernel died while running {running_cell(record)} (killed, or out of memory)"
        f"{after}. The record is partial and kept as such; run the runbook again "
        "(03 and 05 resume from their step ledger)"
    )
