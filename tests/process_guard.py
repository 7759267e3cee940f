"""Tests leave no process behind: a session-end guard over pytest's child processes.

After every fixture is torn down, any descendant of the pytest process still alive (a
sandbox daemon, a kernel, a server a test started) fails the run, named with its pid and
command line, and is killed so it cannot outlive the run. Zombies (exited, not yet
reaped) are reaped, not reported. A SIGTERM to pytest (a CI timeout) is turned into an
interrupt, so fixtures still tear down their stacks before the guard looks.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

GRACE_S = 5.0  # a process told to stop at teardown may take a moment to go
_LEFT: list[str] = []


def _describe(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline()) or proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        cmd = "(gone)"
    return f"pid {proc.pid}: {cmd[:200]}"


def _alive(proc: psutil.Process) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            if proc.ppid() == os.getpid():
                os.waitpid(proc.pid, os.WNOHANG)
            return False
        return proc.is_running()
    except (psutil.NoSuchProcess, ChildProcessError):
        return False


def leftover_processes(grace_s: float = GRACE_S) -> list[psutil.Process]:
    """Descendants of this process still alive after ``grace_s`` seconds."""
    children = [p for p in psutil.Process().children(recursive=True) if _alive(p)]
    if not children:
        return []
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    return [p for p in alive if _alive(p)]


def kill(processes: list[psutil.Process]) -> None:
    """SIGKILL each process and its process group (a daemon's own children go with it)."""
    for proc in processes:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    psutil.wait_procs(processes, timeout=5)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}: tearing down before exit")


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _interrupt)


# trylast: inside the terminal reporter's wrapper, so the section below is printed, and
# after the plain hooks (the runner's tears every remaining fixture down).
@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Iterator[None]:
    result = yield  # every fixture (session-scoped stacks too) is torn down by now
    left = leftover_processes()
    if left:
        _LEFT.extend(_describe(p) for p in left)
        kill(left)
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _LEFT:
        terminalreporter.section("processes left behind", red=True)
        for line in _LEFT:
            terminalreporter.write_line(f"killed {line}")
        terminalreporter.write_line(
            f"FAILED: {len(_LEFT)} process(es) outlived the tests that started them"
        )
