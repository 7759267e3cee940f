"""The release overview: one self-contained HTML page per environment and release.

It lists every record of the release in ledger order — runbook, status, start, end,
duration, operator, approvers, check summary and links to each record's HTML — and the
timeline of the runs against the plan's deployment and rollback windows (section 5). The
ledger is the index; facts come from the records' scraps (``summary``, ``checks``,
``signoffs``) and the schedule from the params file the records ran with.

The page is written beside the records, ``outputs/<env>/<release>/overview.html``, so its
links are plain relative paths; it embeds its own CSS and the timeline as a PNG.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.config import Schedule, read_params_yaml, validate_release
from deploybook.core import audit, paths, render
from deploybook.core.secrets import register_environment
from deploybook.errors import AuditError, ConfigError, DeploybookError
from deploybook.session import seal
from deploybook.session.environment import load_environment_params
from deploybook.session.scraps import (
    CheckRecords,
    MigrationImpact,
    RunFacts,
    SignOffRecords,
    Summary,
)

__all__ = [
    "Overview",
    "Row",
    "approvers",
    "build_report",
    "load_overview",
    "render_page",
    "show_overview",
]

OVERVIEW_NAME = "overview.html"
DIFF_SUFFIX = ".diff.html"
_ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Row:
    """One record of the release, as the overview shows it."""

    seq: int
    runbook: str
    status: str
    error: str | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    operator: str
    approvers: list[str]
    summary: str
    failed_checks: list[str]
    record: Path
    html: Path | None
    review_html: Path | None
    diff_html: Path | None = None  # this rerun against the run before (`write_rerun_diffs`)

    @property
    def missing(self) -> bool:
        """The ledger names a record that is no longer there (`audit verify` says more)."""
        return not self.record.exists()


@dataclass
class Overview:
    """Everything the page shows for one environment and release."""

    env: str
    release: str
    outputs: Path
    rows: list[Row]
    schedule: Schedule
    schedule_source: str
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    impact_note: str = ""  # the migrations' window fit, from the latest 02 record
    _timeline: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def path(self) -> Path:
        return self.outputs / self.env / self.release / OVERVIEW_NAME

    @property
    def window_start(self) -> datetime:
        """T: the configured window start, else the first record's start (the release began)."""
        configured = self.schedule.window_start
        if configured is not None:
            return configured if configured.tzinfo else configured.replace(tzinfo=UTC)
        starts = [r.started_at for r in self.rows if r.started_at]
        return min(starts) if starts else self.generated_at

    @property
    def ledger(self) -> Path:
        return audit.ledger_path(self.outputs, self.env)

    def counts(self) -> Counter:
        return Counter(r.status for r in self.rows)

    def timeline_png(self) -> bytes:
        """The runs as bars against the deployment and rollback windows (plots.plot_schedule).

        Drawn once per overview: a notebook's closing cell shows it and writes the page."""
        if self._timeline is None:
            self._timeline = self._draw_timeline()
        return self._timeline

    def _draw_timeline(self) -> bytes:
        from deploybook.core.plots import plot_schedule

        steps = [
            {
                "name": f"{r.seq} · {r.runbook}",
                "start": r.started_at,
                "end": r.ended_at,
                "status": {"passed": "pass", "failed": "fail"}.get(r.status, r.status),
            }
            for r in self.rows
            if r.started_at
        ]
        sched = self.schedule
        figure = plot_schedule(
            steps,
            self.window_start,
            deployment_window_min=sched.window_minutes,
            rollback_window_min=sched.rollback_window_minutes,
            freeze_h=sched.freeze_hours,
            title=f"{self.release} on {self.env}",
        )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()


# --- reading the ledger and the records ---------------------------------------------------


def _when(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def approvers(signoffs: Any) -> list[str]:
    """``["PM: Ann Lee", …]`` from a ``signoffs`` scrap (list of SignOff dicts or a mapping)."""
    if isinstance(signoffs, dict):
        return [f"{role}: {name}" for role, name in signoffs.items() if name]
    result = []
    for item in signoffs or []:
        if isinstance(item, dict) and item.get("name"):
            result.append(f"{item.get('role', '?')}: {item['name']}")
        elif isinstance(item, str) and item:
            result.append(item)
    return result


def check_summary(scraps: dict[str, Any]) -> tuple[str, list[str]]:
    """The record's summary line and the names of its failed checks."""
    checks = [c for c in scraps.get(CheckRecords.NAME) or [] if isinstance(c, dict)]
    failed = [
        f"{c.get('name', '?')}" + ("" if c.get("critical", True) else " (not critical)")
        for c in checks
        if c.get("status") == "fail"
    ]
    summary = scraps.get(Summary.NAME)
    if isinstance(summary, dict) and summary.get("summary"):
        return str(summary["summary"]), failed
    if checks:
        counts = Counter(str(c.get("status")) for c in checks)
        return ", ".join(f"{n} {s}" for s, n in counts.items()), failed
    return "no checks recorded (the run stopped before its gate)", failed


def _notebook_params_file(record: Path, scraps: dict[str, Any]) -> str | None:
    run = scraps.get(RunFacts.NAME)
    if isinstance(run, dict) and run.get("params_file"):
        return str(run["params_file"])
    try:
        metadata = json.loads(record.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError):
        return None
    return (metadata.get("papermill") or {}).get("parameters", {}).get("params_file")


def _read_scraps(record: Path) -> dict[str, Any]:
    from deploybook.session.records import read_scraps

    if not record.exists():
        return {}
    try:
        return read_scraps(record)
    except Exception:  # noqa: BLE001 - a damaged record still gets its row from the ledger
        return {}


def _shown(path: Path, root: Path) -> str:
    """A path relative to the checkout when it is inside it (pages travel between machines)."""
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _schedule(env: str, candidates: list[str]) -> tuple[Schedule, str]:
    """The schedule from the first params file that exists (records' own, then params/<env>).

    A sandbox params file only interpolates while its stack runs, so when the full load fails
    the ``schedule`` section is read on its own: it holds no ``${VAR}``.
    """
    root = paths.project_root()
    for name in [*candidates, str(root / "params" / f"{env}.yaml")]:
        path = Path(name)
        path = path if path.is_absolute() else root / path
        if not path.is_file():
            continue
        try:
            params = load_environment_params(path)
        except ConfigError:
            try:
                raw = read_params_yaml(path)
                return Schedule.model_validate(raw.get("schedule") or {}), _shown(path, root)
            except Exception:  # noqa: BLE001 - fall through to the next candidate
                continue
        register_environment([*params.secrets, params.database.url_env])
        return params.schedule, _shown(path, root)
    return Schedule(), "defaults (no params file found)"


def load_overview(env: str, release: str, outputs: Path | None = None) -> Overview:
    """Every ledger entry of ``env`` for ``release`` in order, with its record's facts."""
    validate_release(release)
    if not _ENV_NAME.match(env or ""):
        raise ConfigError(f"environment {env!r} is not a valid name (letters, digits, - _ .)")
    outputs = (outputs or paths.outputs_dir()).resolve()
    ledger = audit.read_ledger(audit.ledger_path(outputs, env))
    own = seal.notebook_path()  # the copy showing this overview is not abandoned: it is here
    unsealed = {c for e, c in audit.unsealed(outputs, [env]) if e == env and outputs / c != own}
    entries = [
        e
        for e in ledger
        if e.get("release") == release and (e.get("record") or e.get("copy") in unsealed)
    ]
    rows: list[Row] = []
    params_files: list[str] = []
    impact = ""
    for entry in entries:
        if not entry.get("record"):  # a prepared copy never sealed: shown, never as passed
            entry = {**entry, "record": entry["copy"], "status": "open/abandoned"}
        record = outputs / entry["record"]
        scraps = _read_scraps(record)
        if isinstance(window := (scraps.get(MigrationImpact.NAME) or {}).get("window"), dict):
            impact = f"Migrations as 02 measured them ({record.name}): {window.get('text')}."
        if (name := _notebook_params_file(record, scraps)) and name not in params_files:
            params_files.append(name)
        summary, failed = check_summary(scraps)
        review = record.with_suffix(".review.html")
        diff_page = record.with_suffix(DIFF_SUFFIX)
        rows.append(
            Row(
                seq=int(entry.get("seq", len(rows) + 1)),
                runbook=str(entry.get("runbook", record.stem)),
                status=str(entry.get("status", "unknown")),
                error=entry.get("error"),
                started_at=_when(entry.get("started_at")),
                ended_at=_when(entry.get("ended_at")),
                duration_s=entry.get("duration_s"),
                operator=str(entry.get("operator") or "?"),
                approvers=approvers(scraps.get(SignOffRecords.NAME)),
                summary=summary,
                failed_checks=failed,
                record=record,
                html=outputs / entry["html"] if entry.get("html") else None,
                review_html=review if review.exists() else None,
                diff_html=diff_page if diff_page.exists() else None,
            )
        )
    # The latest record's params file is the one in force.
    schedule, source = _schedule(env, list(reversed(params_files)))
    return Overview(env, release, outputs, rows, schedule, source, impact_note=impact)


# --- the page (rendered by core.render.overview) --------------------------------------------


def render_page(overview: Overview) -> str:
    """The whole page: inline CSS, embedded timeline, links relative to the page; scrubbed."""
    return render.overview_page(overview)


def _write_page(overview: Overview) -> Path:
    overview.path.parent.mkdir(parents=True, exist_ok=True)
    overview.path.write_text(render_page(overview), encoding="utf-8")
    return overview.path


def build_report(
    env: str, release: str, outputs: Path | None = None, *, review: bool = False
) -> Path:
    """Write ``outputs/<env>/<release>/overview.html`` and return its path.

    ``review`` also renders each record's code-free reviewer HTML (``.review.html``) where
    missing and links it. Raises `AuditError` when the ledger has no record of the release.
    """
    overview = load_overview(env, release, outputs)
    if not overview.rows:
        known = sorted(
            {
                str(e.get("release"))
                for e in audit.read_ledger(audit.ledger_path(overview.outputs, env))
            }
        )
        raise AuditError(
            f"no records of {release} for {env} in {audit.ledger_path(overview.outputs, env)}"
            + (f"; releases recorded there: {', '.join(known)}" if known else "")
        )
    if review:
        for row in overview.rows:
            if not row.missing and row.review_html is None:
                audit.render_html(row.record, no_input=True)
    if review or write_rerun_diffs(overview):
        overview = load_overview(env, release, outputs)
    return _write_page(overview)


def write_rerun_diffs(overview: Overview) -> int:
    """Beside each rerun's record, its `deploybook audit diff` with the run of the same
    runbook before it (``.diff.html``); how many were written. A record that cannot be
    trusted gets no diff (`audit verify` says why)."""
    from deploybook.core.render.diff import write_diff_html
    from deploybook.session import recorddiff

    written, before = 0, {}
    for row in overview.rows:
        if row.missing or row.status not in ("passed", "failed"):
            continue
        earlier = before.get(row.runbook)
        before[row.runbook] = row
        target = row.record.with_suffix(DIFF_SUFFIX)
        if earlier is None or target.exists():
            continue
        try:
            changes = recorddiff.diff(
                str(earlier.record.relative_to(overview.outputs)),
                str(row.record.relative_to(overview.outputs)),
                outputs=overview.outputs,
            )
        except DeploybookError:
            continue
        write_diff_html(changes, target)
        written += 1
    return written


def show_overview(env: str, release: str, outputs: Path | None = None) -> Any:
    """The overview for a notebook cell (an IPython HTML object); also writes the page.

    Links are relative to where the notebook lives: the record's folder in a headless run,
    the kernel's working directory (the notebook's folder) in JupyterLab. The record of the
    run showing it is not in the ledger yet, so it lists the runs before this one.
    """
    from IPython.display import HTML

    overview = load_overview(env, release, outputs)
    record = os.environ.get("DEPLOYBOOK_RECORD")
    link_dir = Path(record).parent if record else Path.cwd()
    page = _write_page(overview) if overview.rows else None
    return HTML(render.overview_cell(overview, link_dir, page))
