"""The runner's papermill engine (issue 19 item 4): a kernel started ahead of its run is that
run's own kernel — the run's environment (its record's path too), a fresh session, its own
process group, stopped with the run — and a kernel nobody used is stopped without a trace.
Saves: a cell's start is on disk while it runs; its completion waits for the next save."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
import yaml
from test_config import GOOD

from deploybook.core import procs
from deploybook.ops import kernel
from deploybook.ops.runner import kernel_environment, run_runbook

PROBE = (
    "import json, os\n"
    "print(json.dumps({'record': os.environ.get('DEPLOYBOOK_RECORD'),"
    " 'outputs': os.environ.get('DEPLOYBOOK_OUTPUTS'), 'pid': os.getpid(),"
    " 'pgid': os.getpgrp(), 'cwd': os.getcwd(), 'names': sorted(globals())}))"
)


def _project(tmp_path: Path, cells: list[str]) -> Path:
    root = tmp_path / "project"
    (root / "runbooks").mkdir(parents=True)
    (root / "params").mkdir()
    (root / "params" / "staging.yaml").write_text(yaml.safe_dump(GOOD))
    parameters = nbformat.v4.new_code_cell(
        "env = 'staging'\nrelease = 'v1.4.0'\nparams_file = ''\noperator = ''\nrun_id = ''"
    )
    parameters.metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook(
        cells=[parameters, *(nbformat.v4.new_code_cell(c) for c in cells)],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.write(notebook, root / "runbooks" / "01-preconditions.ipynb")
    return root


def _probe(record: Path) -> dict:
    cells = json.loads(record.read_text())["cells"]
    text = "".join(cells[-1]["outputs"][0]["text"])
    return json.loads(text)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = _project(tmp_path, ["x = 1", PROBE])
    monkeypatch.setenv("DEPLOYBOOK_ROOT", str(root))
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(tmp_path / "outputs"))
    return root


def test_a_kernel_started_ahead_is_the_next_runs_own(project: Path) -> None:
    first = run_runbook("01", "staging", "v1.4.0", {}, html=False, prestart_next=True)
    assert first.status == "passed" and first.next_kernel is not None
    ahead = first.next_kernel
    second = run_runbook("01", "staging", "v1.4.0", {}, html=False, kernel_ready=ahead)
    assert second.status == "passed" and second.next_kernel is None
    one, two = _probe(first.record), _probe(second.record)
    # The run's own record and environment, as a kernel started by the run would have.
    assert one["record"] == str(first.record) and two["record"] == str(second.record)
    assert two["outputs"] == one["outputs"] and two["cwd"] == one["cwd"] == str(project)
    # A fresh session: its own process, its own group, the same names as a fresh kernel.
    assert two["pid"] != one["pid"] and two["pgid"] == two["pid"]
    assert two["names"] == one["names"]
    counts = [c.get("execution_count") for c in json.loads(second.record.read_text())["cells"]]
    assert counts == [1, 2, 3, 4]  # papermill's injected parameters cell too
    # Stopped with its run: nothing of either kernel is left.
    assert not procs.pid_alive(one["pid"]) and not procs.pid_alive(two["pid"])
    assert ahead.manager.started_groups == [two["pgid"]]


def test_an_unused_kernel_is_stopped_and_its_group_is_gone(tmp_path: Path) -> None:
    env = kernel_environment(os.environ, tmp_path)
    spare = kernel.prestart(env, str(tmp_path))
    [pgid] = spare.manager.started_groups
    # It dies with the runner like any run's kernel (the exec line's first statement).
    argv = Path(f"/proc/{pgid}/cmdline").read_bytes().split(b"\0")
    assert any(a.startswith(kernel.DIE_WITH_RUNNER.encode()) for a in argv)
    spare.stop()
    assert procs.group_members(pgid) == []


def test_a_kernel_for_another_environment_is_not_used(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spare = kernel.prestart(kernel_environment(os.environ, tmp_path / "elsewhere"), str(project))
    [pgid] = spare.manager.started_groups
    result = run_runbook("01", "staging", "v1.4.0", {}, html=False, kernel_ready=spare)
    assert result.status == "passed"
    assert _probe(result.record)["pgid"] != pgid  # the run started its own
    assert procs.group_members(pgid) == []


def test_a_released_kernel_that_will_not_exit_is_killed_with_what_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handed kernel is asked to shut down and awaited while its record is finished; one
    that will not exit (a thread still running, SIGTERM ignored) is killed, and the step
    command it left running with it, before the run returns."""
    stubborn = (
        "import signal, subprocess, threading, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "threading.Thread(target=time.sleep, args=(120,)).start()  # the interpreter waits\n"
        "left = subprocess.Popen(['sleep', '120'])"
    )
    root = _project(tmp_path, [stubborn, PROBE])
    monkeypatch.setenv("DEPLOYBOOK_ROOT", str(root))
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setattr(kernel, "EXIT_GRACE_S", 0.3)
    ahead = kernel.prestart(kernel_environment(os.environ, tmp_path / "outputs"), str(root))
    [pgid] = ahead.manager.started_groups
    result = run_runbook("01", "staging", "v1.4.0", {}, kernel_ready=ahead)
    probe = _probe(result.record)
    assert result.status == "passed" and probe["pgid"] == pgid  # the handed kernel ran it
    assert not procs.pid_alive(probe["pid"]) and procs.group_members(pgid) == []
    assert result.html is not None and result.html.is_file() and result.entry["seq"] == 1


def test_saves_at_cell_start_not_at_completion(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploybook.ops.engine import RecordManager

    saves: list[list[str | None]] = []
    original = RecordManager.save

    def counting(self: RecordManager, **kwargs: object) -> None:
        if not self._completing:
            saves.append([c.metadata.papermill["status"] for c in self.nb.cells])
        original(self, **kwargs)

    monkeypatch.setattr(RecordManager, "save", counting)
    result = run_runbook("01", "staging", "v1.4.0", {}, html=False)
    assert result.status == "passed"
    # notebook start, each of the 4 cells' start (papermill's injected parameters cell
    # too), the end; each start save shows that cell running and every earlier one done.
    assert len(saves) == 6
    for index, statuses in enumerate(saves[1:5]):
        assert statuses[:index] == ["completed"] * index and statuses[index] == "running"
