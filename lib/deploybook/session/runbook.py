"""The notebook side of a run: one object per runbook that loads params, shows where you
are, collects checks, glues the facts later runbooks read, and ends in the gate.

A runbook cell is one call on this object and its displayed result, so everything a cell
does is reachable from tests without a notebook.
"""

from __future__ import annotations

import getpass
import itertools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.config import Params, validate_release
from deploybook.core import paths, render
from deploybook.core.checks import Check, Checks, gate
from deploybook.core.secrets import read_secret, register_environment, scrub
from deploybook.errors import ConfigError, GateFailed
from deploybook.session import environment, panels, scraps, seal

_CALLS = itertools.count()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (interactive or papermill)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def headless() -> bool:
    """True when nobody can click a widget: papermill, CI, plain Python."""
    flag = os.environ.get("DEPLOYBOOK_HEADLESS", "").strip().lower() in ("1", "true", "yes")
    return flag or not in_notebook()


def current_execution() -> tuple[str | None, str | None]:
    """(cell id, execution id) of the notebook cell running now; (None, unique) elsewhere.

    JupyterLab sends the cell's id in the execute request's metadata (papermill's nbclient
    does not, and runs each cell once); the request's message id tells one execution of a
    cell from the next.
    """
    if in_notebook():
        from IPython import get_ipython

        kernel = get_ipython().kernel
        parent = kernel.get_parent("shell") if hasattr(kernel, "get_parent") else {}
        header = (parent or {}).get("header", {})
        cell = ((parent or {}).get("metadata") or {}).get("cellId")
        if header.get("msg_id"):
            return cell, header["msg_id"]
    return None, f"call-{next(_CALLS)}"


def show(obj: Any) -> None:
    """Display in a notebook, print elsewhere; always scrubbed."""
    if in_notebook():
        from IPython.display import HTML, display

        if hasattr(obj, "_repr_html_"):
            display(HTML(scrub(obj._repr_html_())))
        elif isinstance(obj, str):
            print(scrub(obj))
        else:
            display(obj)
    else:
        text = obj.to_text() if hasattr(obj, "to_text") else str(obj)
        print(scrub(text))


@dataclass(repr=False)
class Runbook:
    """One run of one runbook against one environment."""

    name: str
    env: str
    release: str
    params_file: str
    operator: str
    execute: bool = False
    previous_release: str | None = None
    run_id: str | None = None
    params: Params = field(init=False)
    checks: Checks = field(init=False, default_factory=Checks)
    started_at: datetime = field(init=False, default_factory=lambda: datetime.now(UTC))
    _clock: float = field(init=False, default_factory=time.monotonic)
    # id(check) -> (cell id, execution id) that recorded it: what a re-run replaces.
    _origin: dict[int, tuple[str | None, str | None]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.execute, bool):
            raise ConfigError(f"execute must be True or False, got {self.execute!r}", key="execute")
        self.operator = self.operator or os.environ.get("DEPLOYBOOK_OPERATOR") or getpass.getuser()
        validate_release(self.release)
        if self.previous_release:
            validate_release(self.previous_release, "previous_release")
        path = Path(self.params_file)
        if not path.is_absolute():
            path = paths.project_root() / path
        self.params = environment.load_environment_params(path)
        environment.adopt(self.params, self.env)
        register_environment([*self.params.secrets, self.params.database.url_env])

    def database_url(self) -> str:
        """The target database URL from the variable params name (this env's, on the sandbox).

        Several sandbox runs may share a process, so on the sandbox the URL is taken from
        this env's stack rather than from whatever the process environment holds last.
        """
        if value := environment.database_url(self.params, self.env):
            return value
        return read_secret(self.params.database.url_env).reveal()

    @property
    def pg_bin_dir(self) -> Path | None:
        """pg_dump/pg_restore from params; on a sandbox without one, the embedded install's
        (None: PATH, then the embedded install, as `pgtools.pg_tools` decides)."""
        return environment.pg_bin_dir(self.params)

    @property
    def record_dir(self) -> Path:
        """Where this run's record lives (its snapshots and reports go beside it)."""
        if record := os.environ.get("DEPLOYBOOK_RECORD"):
            return Path(record).parent
        return paths.outputs_dir() / self.env / self.release

    def facts(self) -> dict[str, Any]:
        return {
            "runbook": self.name,
            "env": self.env,
            "kind": self.params.environment.kind,
            "role": self.params.environment.role,
            "release": self.release,
            "previous_release": self.previous_release,
            "operator": self.operator,
            "execute": self.execute,
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "epic": self.params.epic.id,
        }

    def _repr_html_(self) -> str:
        return render.header_html(self)

    def __repr__(self) -> str:
        return render.header_text(self)

    def to_text(self) -> str:
        return render.header_text(self)

    def header(self) -> Runbook:
        """Show the "you are here" header and glue the run facts."""
        scraps.RunFacts.model_validate(self.facts()).glue()
        return self

    def record(self, result: Check | Iterable[Check]) -> Checks:
        """Add checks to this run's table; a re-run replaces what it supersedes.

        A check is keyed by its name within the run, and a notebook cell owns what it
        recorded: running a cell again drops that cell's earlier checks and any earlier
        check of the same name, so a fixed and re-run cell leaves no stale failure for the
        gate. Checks recorded during one execution of a cell never replace each other.
        """
        new = Checks([result] if isinstance(result, Check) else result)
        cell, execution = current_execution()
        names = {c.name for c in new}

        def stale(check: Check) -> bool:
            origin = self._origin.get(id(check))
            if origin is not None and origin[1] == execution:
                return False
            return check.name in names or (
                cell is not None and origin is not None and origin[0] == cell
            )

        self.checks.replace(new, stale)
        self._origin = {id(c): self._origin.get(id(c), (None, None)) for c in self.checks}
        for check in new:
            self._origin[id(check)] = (cell, execution)
        return new

    @property
    def template(self) -> bool:
        """True when a person runs a committed runbook itself rather than a prepared copy."""
        return not headless() and seal.is_template(seal.notebook_path())

    @property
    def copy(self) -> Path | None:
        """The prepared copy (``deploybook open``) this interactive run seals at its gate."""
        path = seal.notebook_path()
        if headless() or path is None or not (path.parent.parent / "ledger.jsonl").is_file():
            return None
        return path

    def finish(self) -> Checks | None:
        """Glue the checks and timings, show the whole table, then apply the gate.

        In a prepared copy the table is shown first and the copy is sealed into the record
        (`deploybook.session.seal`) whether the gate passes or not, as headless runs are.
        """
        if self.copy is None:
            return self._gate()
        show(self.checks)
        error: str | None = None
        try:
            self._gate()
        except GateFailed as exc:
            error = f"GateFailed: {exc}"
        entry = seal.seal(self, error)
        print(
            f"sealed: {entry['record']} (ledger entry {entry['seq']}, "
            f"sha256 {entry['record_sha256'][:12]}…, {entry['status']})"
        )
        if error:
            raise GateFailed(error.removeprefix("GateFailed: "), self.checks.failed)
        return None  # the table is shown above, inside the sealed record

    def _gate(self) -> Checks:
        duration = time.monotonic() - self._clock
        scraps.CheckRecords.model_validate(self.checks.to_records()).glue()
        scraps.Timing(
            started_at=self.started_at.isoformat(),
            ended_at=datetime.now(UTC).isoformat(),
            duration_s=round(duration, 3),
        ).glue()
        scraps.Summary(ok=self.checks.ok, summary=self.checks.summary()).glue()
        return gate(self.checks, f"{self.name} gate")


def start(name: str, **parameters: Any) -> Runbook:
    """Begin a runbook: validate parameters and params file, show the header.

    A committed runbook opened by a person is a template: it shows so, and refuses
    ``execute=True`` (a prepared copy from ``deploybook open`` is the place to change things).
    """
    panels.install()
    run = Runbook(name=name, **parameters)
    if run.template and run.execute:
        raise ConfigError(
            f"runbooks/{name}.ipynb is the committed template: execute=True is refused here; "
            f"open a prepared copy with `deploybook open {name} --env {run.env} "
            f"--release {run.release} -p execute true`",
            key="execute",
        )
    return run.header()
