"""The seal at the end of an interactive walkthrough: the lead's copy becomes the record.

Exactly what a headless run does after papermill (`deploybook.ops.runner`): the notebook
is saved, scrubbed, annotated, rendered to HTML, hashed and appended to the ledger. The
kernel cannot read the browser's notebook, so it asks JupyterLab to save it (a script
output; JupyterLab started by ``deploybook open`` exposes its app for this) and waits for
the file to change. The sealed record is a sibling file, ``<copy>.sealed-<UTC-ts>.ipynb``,
so a later autosave of the working copy can never alter what the ledger holds.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.core import audit, paths
from deploybook.errors import DeploybookError

SAVE_TIMEOUT_S = 20
_SAVE_MARK = "deploybook-save-request"


class NotSealed(DeploybookError):
    """The working copy could not be saved from the kernel, so it is not sealed yet."""

    what_to_do = "run this cell again and press Ctrl+S while it waits for the save"


def notebook_path() -> Path | None:
    """The notebook file this kernel runs for (JupyterLab names it), or None."""
    name = os.environ.get("JPY_SESSION_NAME")
    if not name:
        return None
    path = Path(name)
    if not path.is_absolute():
        path = paths.project_root() / path
    return path if path.suffix == ".ipynb" else None


def is_template(path: Path | None) -> bool:
    """True for a committed runbook under runbooks/ (a template, never a record)."""
    if path is None:
        return False
    try:
        return path.resolve().parent == paths.runbooks_dir().resolve()
    except OSError:
        return False


def sealed_path(copy: Path, moment: datetime) -> Path:
    """Where one seal of ``copy`` goes: a new file each time, so a failed gate sealed, fixed
    and sealed again leaves two records (as a failed headless run and its rerun do) and
    never rewrites a file the ledger already hashed."""
    return copy.with_name(f"{copy.stem}.sealed-{audit.utc_stamp(moment)}.ipynb")


def _save(copy: Path) -> None:
    """Ask JupyterLab to save ``copy`` and wait until the file on disk has changed."""
    from IPython.display import Javascript, display

    before = copy.stat().st_mtime_ns
    script = (
        f"/* {_SAVE_MARK} */ (async () => {{ const app = window.jupyterapp; if (!app) {{ return; }}"
        f" const name = {json.dumps(copy.name)};"
        " for (const w of app.shell.widgets('main')) {"
        "  if (w.context && w.context.path.endsWith(name)) { await w.context.save(); } } })();"
    )
    display(Javascript(script))
    print(
        f"sealing {copy.name}: saving it (JupyterLab started by `deploybook open` saves by "
        f"itself; otherwise press Ctrl+S within {SAVE_TIMEOUT_S} s)",
        flush=True,
    )
    deadline = time.monotonic() + SAVE_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(0.25)
        if copy.stat().st_mtime_ns != before:
            time.sleep(0.5)  # the server writes the file in one go; let it finish
            return
    raise NotSealed(
        f"{copy.name} was not saved within {SAVE_TIMEOUT_S} s, so the record is not sealed"
    )


def seal(run: Any, error: str | None) -> dict[str, Any]:
    """Save, scrub, annotate, render, hash and append the ledger line for this copy."""
    copy = notebook_path()
    if copy is None or not copy.is_file():
        raise NotSealed("this kernel does not know its notebook file (JPY_SESSION_NAME)")
    _save(copy)
    outputs = copy.parent.parent.parent
    ended = datetime.now(UTC)
    record = sealed_path(copy, ended)
    shutil.copyfile(copy, record)
    audit.scrub_notebook(record)
    status = "failed" if error else "passed"
    notebook = json.loads(record.read_text(encoding="utf-8"))
    for cell in notebook.get("cells", []):  # the save request is not part of the record
        cell["outputs"] = [
            o for o in cell.get("outputs", []) if _SAVE_MARK not in str(o.get("data", {}))
        ]
    notebook.setdefault("metadata", {})["deploybook"] = {
        "runbook": run.name,
        "env": run.env,
        "release": run.release,
        "operator": run.operator,
        "execute": run.execute,
        "status": status,
        "error": error,
        "started_at": run.started_at.isoformat(),
        "ended_at": ended.isoformat(),
        "mode": "interactive",
        "copy": copy.name,
    }
    record.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    html = audit.render_html(record)
    return audit.append_ledger(
        outputs,
        run.env,
        record=str(record.relative_to(outputs)),
        html=str(html.relative_to(outputs)),
        copy=str(copy.relative_to(outputs)),
        runbook=run.name,
        release=run.release,
        operator=run.operator,
        status=status,
        error=error,
        mode="interactive",
        started_at=run.started_at.isoformat(),
        ended_at=ended.isoformat(),
        duration_s=round((ended - run.started_at).total_seconds(), 3),
    )
