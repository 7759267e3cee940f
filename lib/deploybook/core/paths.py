"""Where things live: the project root, the audit outputs and the sandbox state.

The project root is found by walking up from the working directory to the folder that
holds `params/` and `runbooks/`, so a kernel started in `runbooks/` by JupyterLab and the
CLI started at the top agree. Environment variables override each location.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """The deploybook checkout (``DEPLOYBOOK_ROOT`` wins); falls back to the working dir."""
    if env := os.environ.get("DEPLOYBOOK_ROOT"):
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    # The working dir's checkout, else the one this package is installed from (editable),
    # so `deploybook sandbox status` finds the same stack from any directory.
    installed = Path(__file__).resolve().parents[3]
    for candidate in (here, *here.parents, installed):
        if (candidate / "runbooks").is_dir() and (candidate / "params").is_dir():
            return candidate
    return here


def outputs_dir() -> Path:
    """Audit records: ``DEPLOYBOOK_OUTPUTS`` or ``<root>/outputs``."""
    return Path(os.environ.get("DEPLOYBOOK_OUTPUTS") or project_root() / "outputs").resolve()


def state_dir() -> Path:
    """Sandbox state, outside git: ``DEPLOYBOOK_STATE_DIR`` or ``<root>/.state/sandbox``."""
    env = os.environ.get("DEPLOYBOOK_STATE_DIR")
    return Path(env).resolve() if env else project_root() / ".state" / "sandbox"


def runbooks_dir() -> Path:
    return project_root() / "runbooks"
