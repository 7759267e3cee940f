"""Refresh the reference outputs that nbval compares the runbooks against.

Prepares a sandbox in a temporary directory the way tests/test_nbval.py does
(`tests/nbval_stack.py`: a fresh stack on which 02 and 03 ran headless, so 03 and 05 find
the records they read), executes each named runbook in place with nbclient — the way
JupyterLab and nbval run it: kernel in `runbooks/`, parameters as committed (they default
to the sandbox), no papermill cell injected — writes the outputs back into
`runbooks/<name>.ipynb`, and stops the sandbox. A runbook whose cells raise is not
written: a reference must show a run that worked.

    python scripts/refresh_references.py                 # all five runbooks
    python scripts/refresh_references.py 01 04-smoke     # a list of runbooks

Only the outputs, the execution counts and the widget state change; cells, ids and kernel
metadata stay as `scripts/sync_runbooks.py` wrote them from the sources `runbooks/*.py`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError
from deploybook.ops.runner import RUNBOOKS, resolve_runbook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from nbval_stack import prepared_stack  # noqa: E402  (shared with tests/test_nbval.py)
from sync_runbooks import keep_source_newest  # noqa: E402  (this folder is on sys.path)

DEFAULT = list(RUNBOOKS)
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
    keep_source_newest(path.with_suffix(".py"))
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runbooks", nargs="*", help="runbooks to refresh (default: all)")
    args = parser.parse_args(argv)
    try:
        names = [resolve_runbook(n) for n in (args.runbooks or DEFAULT)]
    except ConfigError as exc:
        parser.error(str(exc))

    failures = 0
    with prepared_stack() as prepared:
        print(f"prepared {prepared['runs']} in {prepared['prepared_s']:.0f} s")
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
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
