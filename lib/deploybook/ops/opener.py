"""``deploybook open``: a prepared working copy for the lead, never the committed template.

The copy is ``outputs/<env>/<release>/<UTC-ts>-<runbook>.ipynb`` with the parameters
injected by papermill's prepare-only mode (validated exactly as ``deploybook run`` does),
registered in the ledger as *open*. Its gate cell seals it (`deploybook.session.seal`);
a copy never sealed is reported as open/abandoned, never as passed.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.config import validate_release
from deploybook.core import audit, paths
from deploybook.errors import ConfigError
from deploybook.ops import runner
from deploybook.session.environment import load_environment_params


def prepare_copy(
    runbook: str,
    env: str,
    release: str,
    parameters: dict[str, Any] | None = None,
    *,
    params_file: Path | None = None,
    outputs: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write the prepared copy and its *open* ledger line; ConfigError before anything if bad."""
    import papermill

    runbook = runner.resolve_runbook(runbook)
    validate_release(release)
    parameters = dict(parameters or {})
    declared = runner.notebook_parameters(runbook)
    runner.check_parameters(parameters, set(declared) - runner._RESERVED)
    runner.check_types(parameters, declared)
    params_file = (params_file or runner.params_file_for(env)).resolve()
    params = load_environment_params(params_file)
    if params.environment.name != env:
        raise ConfigError(
            f"{params_file}: environment.name is {params.environment.name!r}, not {env!r}"
        )
    outputs = (outputs or paths.outputs_dir()).resolve()
    parameters.setdefault("operator", os.environ.get("DEPLOYBOOK_OPERATOR") or getpass.getuser())
    parameters.setdefault("run_id", audit.utc_stamp())
    parameters.update(env=env, release=release, params_file=str(params_file))

    copy = audit.record_path(outputs, env, release, runbook)
    copy.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(paths.runbooks_dir() / f"{runbook}.ipynb"),
        str(copy),
        parameters=parameters,
        prepare_only=True,
        kernel_name="python3",
        progress_bar=False,
    )
    # A record-to-be is not paired with a text file (jupytext would write one beside it).
    notebook = json.loads(copy.read_text(encoding="utf-8"))
    notebook.get("metadata", {}).get("jupytext", {}).pop("formats", None)
    copy.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    entry = audit.append_ledger(
        outputs,
        env,
        copy=str(copy.relative_to(outputs)),
        runbook=runbook,
        release=release,
        operator=parameters["operator"],
        status="open",
        mode="interactive",
        started_at=datetime.now(UTC).isoformat(),
    )
    return copy, entry


def lab_url(copy: Path, *, start: bool = True, log: Path | None = None) -> str | None:
    """The JupyterLab URL of ``copy``: a running server rooted above it, else one started
    in the background (with the app exposed, so the gate cell can save before sealing)."""
    from jupyter_server.serverapp import list_running_servers

    root = paths.project_root().resolve()
    for server in list_running_servers():
        base = Path(server.get("root_dir") or server.get("notebook_dir") or "/").resolve()
        if copy.resolve().is_relative_to(base):
            rel = copy.resolve().relative_to(base)
            return f"{server['url'].rstrip('/')}/lab/tree/{rel}?token={server.get('token', '')}"
    if not start:
        return None
    log = log or paths.state_dir() / "jupyterlab.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--LabApp.expose_app_in_browser=True",
        f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = {
        k: v for k, v in os.environ.items() if k not in ("DEPLOYBOOK_HEADLESS", "DEPLOYBOOK_RECORD")
    }
    with open(log, "ab") as out:
        subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if url := lab_url(copy, start=False):
            return url
    raise ConfigError(f"JupyterLab did not start within 60 s; its log is {log}")
