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
from collections.abc import Mapping
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
    next_kernel: kernel.Prestarted | None = None  # see run_runbook(prestart_next=True)

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
    kernel_ready: kernel.Prestarted | None = None,
    prestart_next: bool = False,
) -> RunResult:
    """Execute a runbook into an audit record; raises `ConfigError` before starting if bad.

    ``kernel_ready``: a kernel started for this run ahead of time; it is this run's (used,
    or stopped — also when the run raises). ``prestart_next``: start another kernel while
    this run runs, returned as ``next_kernel``; the caller runs with it or ``stop()``s it.
    """
    started_next: list[kernel.Prestarted] = []
    try:
        result = _run(
            runbook,
            env,
            release,
            parameters,
            params_file=params_file,
            outputs=outputs,
            html=html,
            log_output=log_output,
            handed=kernel_ready,
            next_kernel=started_next if prestart_next else None,
        )
    except BaseException:
        if kernel_ready is not None and not kernel_ready.taken:
            kernel_ready.stop()
        for spare in started_next:
            spare.stop()
        raise
    result.next_kernel = started_next[0] if started_next else None
    return result


def _run(
    runbook: str,
    env: str,
    release: str,
    parameters: dict[str, Any] | None,
    *,
    params_file: Path | None,
    outputs: Path | None,
    html: bool,
    log_output: bool,
    handed: kernel.Prestarted | None,
    next_kernel: list[kernel.Prestarted] | None,
) -> RunResult:
    runbook = resolve_runbook(runbook)
    validate_release(release)
    # The params file as written (aliases, unknown keys) before the slow imports below.
    read_params((params_file or params_file_for(env)).resolve())

    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from deploybook.ops.engine import ENGINE_NAME

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

    saved_env = os.environ.copy()
    kernel_env = kernel_environment(saved_env, outputs, record)
    cwd = str(paths.project_root())
    engine: dict[str, Any] = {}
    reapers: list[kernel.Reaper] = []
    manager = kernel.tracking_manager()
    if handed is not None:
        handed.taken = True  # from here on this run uses it or stops it
        if handed.fits(kernel_env, cwd):
            manager = handed.manager
            engine.update(km=handed.km, env_update={"DEPLOYBOOK_RECORD": str(record)})
            # Its exit is awaited while the record is finished below, not before.
            engine["released"] = lambda process: reapers.append(
                kernel.Reaper.begin(process, manager)
            )
        else:
            handed.stop()  # started for another environment: this run starts its own
    if next_kernel is not None:
        # Once this run is under way, the next run's kernel boots while this one runs.
        engine["on_running"] = lambda: kernel.prestart_into(
            next_kernel, kernel_environment(saved_env, outputs), cwd
        )

    error: str | None = None
    crashed = False
    clock = time.monotonic()
    os.environ.update(kernel_env)  # the kernel inherits this process's environment
    try:
        papermill.execute_notebook(
            str(source),
            str(record),
            engine_name=ENGINE_NAME,
            parameters=parameters,
            cwd=cwd,
            kernel_name="python3",
            progress_bar=False,
            log_output=log_output,
            request_save_on_cell_execute=True,
            extra_arguments=list(kernel.ARGUMENTS),
            kernel_manager_class=manager,
            **engine,
        )
    except PapermillExecutionError as exc:
        error = _error_summary(exc)
    except DeadKernelError:
        crashed = True
    except BaseException:
        for reaper in reapers:
            reaper.finish()
        raise
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        stopped = [] if reapers else kernel.stop_groups(manager)  # see the end of the run
    if crashed:
        error = kernel.crash_message(record, stopped)
    duration = time.monotonic() - clock
    ended = datetime.now(UTC)

    try:
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
    finally:
        for reaper in reapers:
            reaper.finish()  # nothing the run started outlives it
    return RunResult(runbook, env, release, record, html_path, status, error, duration, entry)


def kernel_environment(
    base: Mapping[str, str], outputs: Path, record: Path | None = None
) -> dict[str, str]:
    """The environment a run's kernel starts with: this process's, plus where the project,
    the outputs and (once the run has started) its record are."""
    env = dict(base)
    env["DEPLOYBOOK_HEADLESS"] = "1"
    env["DEPLOYBOOK_ROOT"] = str(paths.project_root())
    env["DEPLOYBOOK_OUTPUTS"] = str(outputs)
    if record is not None:
        env["DEPLOYBOOK_RECORD"] = str(record)
    # Commands in params name `deploybook`; make sure this installation's is found first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


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
