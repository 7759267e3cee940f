"""Run one runbook headless with papermill and turn the result into an audit record.

Order matters: everything that can be validated (runbook name, release, parameters, the
params file) is validated before the output folder exists, so a run that never started
leaves no record. Once papermill starts, a record and a ledger line are always written,
including when a gate fails and when the kernel dies (status ``crashed``: the partial
record, its HTML and a short message; every process the kernel started is stopped).
"""

from __future__ import annotations

import ast
import getpass
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.config import read_params, validate_release
from deploybook.core import audit, paths
from deploybook.core.secrets import register_environment
from deploybook.errors import ConfigError
from deploybook.ops import kernel
from deploybook.session.environment import load_environment_params

RUNBOOKS = (
    "01-preconditions",
    "02-migration-dry-run",
    "03-rollout",
    "04-smoke",
    "05-rollback",
)
# Set by the runner itself from the command line, never with -p.
_RESERVED = {"env", "release", "params_file"}
_SECRETISH = ("password", "secret", "token", "api_key", "apikey", "database_url")


@dataclass
class RunResult:
    """What a run produced: where the record is, whether its gate passed, the ledger entry."""

    runbook: str
    env: str
    release: str
    record: Path
    html: Path | None
    status: str  # "passed" | "failed" | "crashed"
    error: str | None
    duration_s: float
    entry: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "passed" else 1


def resolve_runbook(name: str) -> str:
    """Accept ``01``, ``01-preconditions`` or ``preconditions``; refuse anything else."""
    for runbook in RUNBOOKS:
        if name in (runbook, runbook[:2], runbook[3:]):
            return runbook
    raise ConfigError(f"unknown runbook {name!r}; expected one of {', '.join(RUNBOOKS)}")


def params_file_for(env: str) -> Path:
    return paths.project_root() / "params" / f"{env}.yaml"


def notebook_parameters(runbook: str) -> dict[str, Any]:
    """The parameters a runbook declares in its tagged cell (name -> default and type)."""
    import papermill

    path = paths.runbooks_dir() / f"{runbook}.ipynb"
    if not path.is_file():
        raise ConfigError(
            f"runbook {path} not found: run deploybook from its checkout or set DEPLOYBOOK_ROOT"
        )
    return papermill.inspect_notebook(str(path))


def _expected_types(default_source: str) -> tuple[type, ...] | None:
    """The types a parameter accepts, judged by its default in the parameters cell."""
    try:
        default = ast.literal_eval(default_source)
    except (ValueError, SyntaxError):
        return None
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int | float):
        return (int, float)
    if isinstance(default, str):
        return (str,)
    if isinstance(default, dict | list):
        return (dict, list)
    return None  # a None default: the runbook validates the value itself


def check_types(parameters: dict[str, Any], declared: dict[str, Any]) -> None:
    """Refuse a value whose type differs from its default's: `-p execute "'false'"` is a
    truthy string, and must never reach a runbook that changes systems."""
    for name, value in parameters.items():
        spec = declared.get(name)
        expected = _expected_types(spec["default"]) if spec else None
        if expected is None:
            continue
        if isinstance(value, bool) and bool not in expected:
            ok = False
        else:
            ok = isinstance(value, expected)
        if not ok:
            wanted = " or ".join(t.__name__ for t in expected)
            raise ConfigError(
                f"parameter {name!r} must be {wanted} (like its default {spec['default']}), "
                f"got {type(value).__name__} {value!r}",
                key=name,
            )


def check_parameters(parameters: dict[str, Any], allowed: set[str]) -> None:
    """Refuse unknown parameters and anything that looks like a secret passed as one."""
    for name in parameters:
        if any(word in name.lower() for word in _SECRETISH):
            raise ConfigError(
                f"parameter {name!r} looks like a secret: secrets come from the environment "
                "only (a parameter is written into the audit record for ever)",
                key=name,
            )
        if name in _RESERVED:
            raise ConfigError(
                f"parameter {name!r} is set by --env/--release/--params-file", key=name
            )
        if name not in allowed:
            raise ConfigError(
                f"unknown parameter {name!r}; this runbook takes {', '.join(sorted(allowed))}",
                key=name,
            )


def _error_summary(exc: Exception) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    return f"{ename}: {evalue}"


def run_runbook(
    runbook: str,
    env: str,
    release: str,
    parameters: dict[str, Any] | None = None,
    *,
    params_file: Path | None = None,
    outputs: Path | None = None,
    html: bool = True,
    log_output: bool = False,
) -> RunResult:
    """Execute a runbook into an audit record; raises `ConfigError` before starting if bad."""
    runbook = resolve_runbook(runbook)
    validate_release(release)
    # The params file as written (aliases, unknown keys) before the slow imports below.
    read_params((params_file or params_file_for(env)).resolve())

    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    parameters = dict(parameters or {})
    declared = notebook_parameters(runbook)
    check_parameters(parameters, set(declared) - _RESERVED)
    check_types(parameters, declared)
    if "previous_release" in parameters:
        validate_release(parameters["previous_release"], "previous_release")
    params_file = (params_file or params_file_for(env)).resolve()
    params = load_environment_params(params_file)
    if params.environment.name != env:
        raise ConfigError(
            f"{params_file}: environment.name is {params.environment.name!r}, not {env!r}"
        )
    register_environment([*params.secrets, params.database.url_env])
    outputs = (outputs or paths.outputs_dir()).resolve()

    parameters.setdefault("operator", os.environ.get("DEPLOYBOOK_OPERATOR") or getpass.getuser())
    parameters.setdefault("run_id", audit.utc_stamp())
    parameters.update(env=env, release=release, params_file=str(params_file))

    started = datetime.now(UTC)
    record = audit.record_path(outputs, env, release, runbook, started)
    record.parent.mkdir(parents=True, exist_ok=True)
    source = paths.runbooks_dir() / f"{runbook}.ipynb"

    kernel_env = os.environ.copy()
    kernel_env["DEPLOYBOOK_HEADLESS"] = "1"
    kernel_env["DEPLOYBOOK_ROOT"] = str(paths.project_root())
    kernel_env["DEPLOYBOOK_OUTPUTS"] = str(outputs)
    kernel_env["DEPLOYBOOK_RECORD"] = str(record)
    # Commands in params name `deploybook`; make sure this installation's is found first.
    kernel_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{kernel_env.get('PATH', '')}"

    error: str | None = None
    crashed = False
    manager = kernel.tracking_manager()
    clock = time.monotonic()
    saved_env = os.environ.copy()
    os.environ.update(kernel_env)  # the kernel inherits this process's environment
    try:
        papermill.execute_notebook(
            str(source),
            str(record),
            parameters=parameters,
            cwd=str(paths.project_root()),
            kernel_name="python3",
            progress_bar=False,
            log_output=log_output,
            request_save_on_cell_execute=True,
            # The kernel's own start-up chatter is not part of the record.
            extra_arguments=["--IPKernelApp.log_level=ERROR", kernel.DIE_WITH_RUNNER],
            kernel_manager_class=manager,
        )
    except PapermillExecutionError as exc:
        error = _error_summary(exc)
    except DeadKernelError:
        crashed = True
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        stopped = kernel.stop_groups(manager)  # nothing it started outlives the run
    if crashed:
        error = kernel.crash_message(record, stopped)
    duration = time.monotonic() - clock
    ended = datetime.now(UTC)

    status = "crashed" if crashed else "failed" if error else "passed"
    audit.scrub_notebook(record)
    _annotate(record, runbook, env, release, parameters, status, error, started, ended)
    html_path = audit.render_html(record) if html else None
    entry = audit.append_ledger(
        outputs,
        env,
        record=str(record.relative_to(outputs)),
        html=str(html_path.relative_to(outputs)) if html_path else None,
        runbook=runbook,
        release=release,
        operator=parameters["operator"],
        status=status,
        error=error,
        started_at=started.isoformat(),
        ended_at=ended.isoformat(),
        duration_s=round(duration, 3),
    )
    return RunResult(runbook, env, release, record, html_path, status, error, duration, entry)


def _annotate(
    record: Path,
    runbook: str,
    env: str,
    release: str,
    parameters: dict[str, Any],
    status: str,
    error: str | None,
    started: datetime,
    ended: datetime,
) -> None:
    """Write the run's facts into the notebook metadata so the record explains itself."""
    notebook = json.loads(record.read_text(encoding="utf-8"))
    notebook.setdefault("metadata", {})["deploybook"] = {
        "runbook": runbook,
        "env": env,
        "release": release,
        "operator": parameters.get("operator"),
        "execute": bool(parameters.get("execute", False)),
        "status": status,
        "error": error,
        "started_at": started.isoformat(),
        "ended_at": ended.isoformat(),
    }
    record.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
