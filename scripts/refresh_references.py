"""Refresh the reference outputs that nbval compares the runbooks against.

Brings a sandbox up in a temporary state directory, executes each named runbook in place
with nbclient — the way JupyterLab and nbval run it: kernel in `runbooks/`, parameters as
committed (they default to the sandbox), no papermill cell injected — writes the outputs
back into `runbooks/<name>.ipynb`, and stops the sandbox. A runbook whose cells raise is
not written: a reference must show a run that worked.

    python scripts/refresh_references.py                 # 01-preconditions
    python scripts/refresh_references.py 01 04-smoke     # a list of runbooks

Only the outputs, the execution counts and the widget state change; the notebook stays the
source (cells, ids and kernel metadata are kept as `scripts/sync_runbooks.py` wrote them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError
from deploybook.ops.runner import resolve_runbook
from deploybook.sandbox import stack

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["01-preconditions"]
WIDGET_STATE = "widgets"
CELL_TIMEOUT_S = 600


def execute_in_place(path: Path) -> float:
    """Execute one runbook into its own file; raises CellExecutionError (file untouched)."""
    source = nbformat.read(path, as_version=4)
    executed = nbformat.read(path, as_version=4)
    started = time.monotonic()
    NotebookClient(
        executed,
        timeout=CELL_TIMEOUT_S,
        kernel_name=source.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,  # no per-cell timestamps in the source notebook
        store_widget_state=True,  # the sign-off form renders when the notebook is opened
    ).execute()
    for cell, ran in zip(source.cells, executed.cells, strict=True):
        if cell.cell_type == "code":
            cell.outputs = nbformat.from_dict(scrub(ran.outputs))
            cell.execution_count = ran.execution_count
    source.metadata.pop(WIDGET_STATE, None)
    if WIDGET_STATE in executed.metadata:
        source.metadata[WIDGET_STATE] = nbformat.from_dict(scrub(executed.metadata[WIDGET_STATE]))
    nbformat.validate(source)
    nbformat.write(source, path)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runbooks", nargs="*", help="runbooks to refresh (default: 01)")
    args = parser.parse_args(argv)
    try:
        names = [resolve_runbook(n) for n in (args.runbooks or DEFAULT)]
    except ConfigError as exc:
        parser.error(str(exc))

    base = Path(tempfile.mkdtemp(prefix="deploybook-refresh-"))
    state = base / "state"
    # The kernel inherits this environment: the temporary stack, a throwaway outputs folder,
    # interactive mode (as in JupyterLab and under nbval), and this installation first.
    os.environ.update(
        DEPLOYBOOK_STATE_DIR=str(state),
        DEPLOYBOOK_OUTPUTS=str(base / "outputs"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    # The kernel finds the checkout by walking up from runbooks/, as under nbval.
    for name in ("DEPLOYBOOK_HEADLESS", "DEPLOYBOOK_RECORD", "DEPLOYBOOK_ROOT"):
        os.environ.pop(name, None)
    failures = 0
    try:
        stack.up(state)
        for env in stack.ENVS:
            stack.sandbox_environment(env)  # registers the stack's secrets with scrub()
        for name in names:
            path = ROOT / "runbooks" / f"{name}.ipynb"
            try:
                seconds = execute_in_place(path)
            except CellExecutionError as exc:
                failures += 1
                last = str(exc).strip().splitlines()[-1] if str(exc).strip() else "?"
                print(f"FAILED  {name}: not written ({scrub(last)})", file=sys.stderr)
                continue
            print(f"wrote   {path.relative_to(ROOT)} ({seconds:.1f} s)")
    finally:
        stack.down(state)
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
