"""A run that dies cleanly (issue 22 item 2): real kernels, real kill -9, real processes.

The kernel of a headless run is killed while a step command runs: the command dies with
it (no orphan keeps building), the partial record, its HTML and a ``crashed`` ledger line
are written, `audit verify` accepts the entry, and the lead reads one short line instead
of a DeadKernelError traceback. The lock is not taken over while a dead holder's
processes still run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from test_config import GOOD

from deploybook.core import audit, procs
from deploybook.core.lock import environment_lock
from deploybook.errors import LockHeld
from deploybook.ops.runner import run_runbook

PY = sys.executable
DEPLOYBOOK = str(Path(sys.executable).parent / "deploybook")


def _wait_for(path: Path, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def _project(tmp_path: Path, pidfile: Path) -> Path:
    """A checkout whose 01-preconditions runs a long step command (a build) and records
    its pid: the runner's real papermill path, a notebook small enough to read."""
    root = tmp_path / "project"
    (root / "runbooks").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "params" / "staging.yaml").write_text(yaml.safe_dump(GOOD))
    parameters = nbformat.v4.new_code_cell(
        "env = 'staging'\nrelease = 'v1.4.0'\nparams_file = ''\noperator = ''\nrun_id = ''"
    )
    parameters.metadata["tags"] = ["parameters"]
    code = (
        "import os, pathlib, time; "
        f"pathlib.Path({str(pidfile)!r}).write_text(str(os.getpid())); time.sleep(120)"
    )
    build = (
        "import sys\nfrom deploybook.systems.commands import run_command\n"
        f"run_command([sys.executable, '-c', {code!r}], timeout_s=300)"
    )
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# 01 (a build that is killed)"),
            parameters,
            nbformat.v4.new_code_cell(build),
            nbformat.v4.new_code_cell("print('never reached')"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.write(notebook, root / "runbooks" / "01-preconditions.ipynb")
    return root


def test_kill_9_of_the_kernel_mid_build_crashes_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "build.pid"
    root = _project(tmp_path, pidfile)
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("DEPLOYBOOK_ROOT", str(root))
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(outputs))
    killed: dict[str, int] = {}

    def killer() -> None:
        build = int(_wait_for(pidfile))
        kernel = int(Path(f"/proc/{build}/stat").read_text().rsplit(")", 1)[1].split()[1])
        killed.update(build=build, kernel=kernel)
        os.kill(kernel, signal.SIGKILL)

    import threading

    thread = threading.Thread(target=killer)
    thread.start()
    result = run_runbook("01", "staging", "v1.4.0", {}, html=True)
    thread.join(timeout=60)

    assert result.status == "crashed" and result.exit_code == 1
    assert "the kernel died while running cell 4 (import sys)" in result.error
    assert "Traceback" not in result.error and "DeadKernelError" not in result.error
    assert "stopped" in result.error
    # No orphan: the build the kernel had started is gone.
    assert not procs.pid_alive(killed["build"])
    assert procs.group_members(killed["kernel"]) == []
    # The partial record, its HTML and a crashed ledger line.
    assert result.record.exists() and result.html and result.html.exists()
    meta = json.loads(result.record.read_text())["metadata"]["deploybook"]
    assert meta["status"] == "crashed"
    entries = audit.read_ledger(audit.ledger_path(outputs, "staging"))
    assert entries[-1]["status"] == "crashed" and entries[-1]["record"] == str(
        result.record.relative_to(outputs)
    )
    count, problems = audit.verify(outputs)
    assert count == 1 and problems == []


def test_deploybook_run_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    pidfile = tmp_path / "build.pid"
    root = _project(tmp_path, pidfile)
    env = {**os.environ, "DEPLOYBOOK_ROOT": str(root), "DEPLOYBOOK_OUTPUTS": str(tmp_path / "o")}
    cli = subprocess.Popen(
        [DEPLOYBOOK, "run", "01", "--env", "staging", "--release", "v1.4.0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    build = int(_wait_for(pidfile))
    kernel = int(Path(f"/proc/{build}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(kernel, signal.SIGKILL)
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 1, err
    assert "status:  crashed" in out
    assert "Traceback" not in err and "DeadKernelError" not in err
    assert "the kernel died while running cell 4 (import sys)" in err
    assert not procs.pid_alive(build)
    verify = subprocess.run(
        [DEPLOYBOOK, "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "CRASHED" in verify.stdout and "TAMPERED" not in verify.stdout


HOLDER = """
import os, subprocess, sys, time
from deploybook.core.lock import environment_lock
with environment_lock(sys.argv[1], "production", operator="alice", runbook="03-rollout"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(child.pid, flush=True)
    time.sleep(120)
"""


def test_lock_is_not_taken_over_while_the_dead_holders_processes_run(tmp_path: Path) -> None:
    # The holder leads its own process group, as a kernel does; its child stays in it.
    holder = subprocess.Popen(
        [PY, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = int(holder.stdout.readline())
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    try:
        with pytest.raises(LockHeld, match=rf"gone but processes it started still run.*{child}"):
            with environment_lock(tmp_path, "production", operator="bob"):
                pass
        assert procs.pid_alive(child)  # refused without touching them
    finally:
        procs.kill_group(holder.pid)
    deadline = time.monotonic() + 5
    while procs.group_members(holder.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.warns(UserWarning, match="stale lock.*process is gone"):
        with environment_lock(tmp_path, "production", operator="bob") as lock:
            assert lock.took_over and lock.took_over["pgid"] == holder.pid
            held = json.loads((tmp_path / "production.lock").read_text())
            assert held["pid"] == os.getpid() and held["pid_start"] == procs.start_time(os.getpid())


def test_step_commands_stay_in_the_callers_process_group(tmp_path: Path) -> None:
    from deploybook.systems.commands import run_command

    result = run_command([PY, "-c", "import os; print(os.getpgrp())"], timeout_s=30)
    assert int(result.stdout.strip()) == os.getpgrp()


def test_kill_9_of_deploybook_run_takes_its_kernel_and_build_along(tmp_path: Path) -> None:
    pidfile = tmp_path / "build.pid"
    root = _project(tmp_path, pidfile)
    env = {**os.environ, "DEPLOYBOOK_ROOT": str(root), "DEPLOYBOOK_OUTPUTS": str(tmp_path / "o")}
    cli = subprocess.Popen(
        [DEPLOYBOOK, "run", "01", "--env", "staging", "--release", "v1.4.0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    build = int(_wait_for(pidfile))
    kernel = os.getpgid(build)
    assert kernel != os.getpgrp()  # the kernel leads its own group; the build is in it
    os.kill(cli.pid, signal.SIGKILL)
    cli.wait(timeout=10)
    deadline = time.monotonic() + 15
    while procs.group_members(kernel) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not procs.pid_alive(build) and not procs.pid_alive(kernel)
    assert procs.group_members(kernel) == []
