"""Runbook 05, part three: the incident report, the rollback's outcome and the timeline."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.render import describe_breach, write_incident_report
from deploybook.runbooks.rollback.plan import SECTION
from deploybook.runbooks.rollback.steps import Recovery, announce_step, run_key
from deploybook.session import runbook as session
from deploybook.session import scraps


# -- incident report -------------------------------------------------------------------------
def _links(recovery: Recovery, report: Path) -> dict[str, str]:
    plan, out = recovery.plan, {}
    named = {f"{name} record": path for name, path in plan.records.items()}
    if record := os.environ.get("DEPLOYBOOK_RECORD"):
        named["05-rollback record (this run)"] = record
    named["snapshot restored"] = str(plan.snapshot.path)
    if recovery.safety_snapshot:
        named["safety snapshot (the state before the restore)"] = recovery.safety_snapshot
    for name, target in named.items():
        out[name] = os.path.relpath(target, report.parent)
    return out


def _reverted_items(recovery: Recovery) -> list[dict[str, Any]]:
    items = [dict(r) for r in recovery.reverted]
    snap = recovery.plan.snapshot
    items.append(
        {
            "what": f"database {recovery.plan.database}",
            "detail": (
                f"restored from {Path(snap.path).name} (taken {snap.created_at}) {_how(recovery)}"
                if recovery.restored
                else f"NOT restored ({_how(recovery) or 'restore not reached'})"
            ),
            "migrations removed": ", ".join(recovery.removed_migrations) or "none",
            "applied by the rollout": ", ".join(recovery.plan.applied_migrations) or "not recorded",
        }
    )
    return items


def _how(recovery: Recovery) -> str:
    if recovery.restore_mode == "swap":
        kept = recovery.pre_rollback_db or "not swapped"
        return f"by swap: {recovery.restore_why}; the old database is kept as {kept}"
    if recovery.restore_mode == "in_place":
        return f"in place (one transaction): {recovery.restore_why}"
    return ""


def data_loss_notes(recovery: Recovery) -> str | None:
    """The incident report's account of what the restore discarded and where it is kept."""
    loss = recovery.data_loss
    if loss is None:
        return None
    lines = ["### Data discarded by the restore", ""]
    if not loss.discards:
        return "\n".join([*lines, f"Nothing: {loss.summary()}."])
    lines += [
        "| table | rows in snapshot | rows before the restore | written/updated after | newest |",
        "|---|---|---|---|---|",
    ]
    for r in loss.discards:
        before = "not in snapshot" if r["snapshot_rows"] is None else f"{r['snapshot_rows']:,}"
        lines.append(
            f"| {r['table']} | {before} | {r['live_rows']:,} | {r['written_after']:,} "
            f"| {r['newest'] or ''} |"
        )
    lines += ["", f"Kept in {loss.kept_in}." if loss.kept_in else "Not kept anywhere."]
    return "\n".join(lines)


def file_incident(run: session.Runbook, recovery: Recovery) -> Checks:
    """Write the incident report beside the record, send it, announce completion, glue."""
    plan, window = recovery.plan, run.params.schedule.rollback_window_minutes
    scrap = scraps.RollbackOutcome(
        dry_run=not run.execute,
        recovery_s=recovery.recovery_s,
        verified=recovery.verified_at is not None,
        started_at=recovery.started_at.isoformat(),
        verified_at=recovery.verified_at.isoformat() if recovery.verified_at else None,
        rollback_window_minutes=window,
        within_window=recovery.recovery_s is not None and recovery.recovery_s <= window * 60,
        reverted=recovery.reverted,
        restored=recovery.restored,
        removed_migrations=recovery.removed_migrations,
        snapshot=str(plan.snapshot.path),
        safety_snapshot=recovery.safety_snapshot,
        incident_report=None,
        trigger=plan.breach,
        restore_mode=recovery.restore_mode or None,
        restore_why=recovery.restore_why or None,
        pre_rollback_db=recovery.pre_rollback_db,
        swap_s=recovery.swap_s,
        data_loss=recovery.data_loss.as_dict() if recovery.data_loss else None,
    )
    if not run.execute:
        scrap.glue()
        return run.record(
            Check("incident report", SECTION, Status.SKIP, "dry run: no incident filed", False)
        )
    report = run.record_dir / f"incident-{run.env}-{run.release}-{run_key(run)}.md"
    write_incident_report(
        report,
        title=f"rollback of {run.release} on {run.env}",
        env=run.env,
        release=run.release,
        trigger=[describe_breach(plan.breach)]
        + [f"recorded in {name}: {Path(path).name}" for name, path in plan.records.items()],
        steps=recovery.timeline_rows(),
        reverted=_reverted_items(recovery),
        started_at=recovery.started_at,
        verified_at=recovery.verified_at,
        previous_release=plan.previous_release,
        rollback_window_min=window,
        links=_links(recovery, report),
        operator=run.operator,
        run_id=run_key(run),
        notes=data_loss_notes(recovery),
    )
    recovery.incident_report = str(report)
    scrap.incident_report = str(report)
    checks = run.record(Check("incident report written", SECTION, Status.PASS, str(report)))
    incident = [t for t in run.params.notifications if t.incident]
    verdict = (
        f"verified after {recovery.recovery_s / 60:.1f} min (rollback window {window} min)"
        if recovery.recovery_s is not None
        else "NOT verified: see the incident report"
    )
    checks.extend(
        announce_step(
            recovery,
            "send incident report",
            incident,
            f"Incident: rollback of {run.release} on {run.env}",
            report.read_text(),
        )
    )
    checks.extend(
        announce_step(
            recovery,
            "announce completion",
            list(run.params.notifications),
            f"Rollback finished: {run.env} {run.release} → "
            f"{plan.previous_release or 'previous versions'}",
            f"{verdict}.\nIncident report: {report.name}",
        )
    )
    scrap.glue()
    return checks


# -- timeline --------------------------------------------------------------------------------
_COLOURS = {"done": "#34a853", "skipped": "#9aa0a6", "failed": "#d93025", "breach": "#d93025"}


def _at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def plot_recovery(
    rows: list[dict[str, Any]],
    start: datetime,
    window_min: float,
    verified_at: datetime | None = None,
    *,
    title: str = "Recovery",
):
    """Each step in minutes since the rollback started, against the rollback window."""
    import matplotlib.pyplot as plt

    def minutes(value: Any) -> float | None:
        moment = _at(value)
        return None if moment is None else (moment - start).total_seconds() / 60

    bars = []
    for row in rows:
        begin, end = minutes(row.get("started_at")), minutes(row.get("ended_at"))
        if begin is not None:
            bars.append((row["name"], begin, end if end is not None else begin, row.get("status")))
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.35 * max(len(bars), 2)), layout="constrained")
    ax.axvspan(
        0, window_min, color="#f9ab00", alpha=0.12, label=f"rollback window ({window_min:g} min)"
    )
    least = window_min / 200
    for y, (_, begin, end, status) in enumerate(reversed(bars)):
        ax.barh(
            y,
            max(end - begin, least),
            left=begin,
            height=0.6,
            color=_COLOURS.get(str(status), "#4285f4"),
        )
    ax.set_yticks(range(len(bars)), [b[0] for b in reversed(bars)], fontsize=8)
    if verified_at is not None:
        took = (verified_at - start).total_seconds() / 60
        colour = "#34a853" if took <= window_min else "#d93025"
        ax.axvline(took, color=colour, linewidth=2, label=f"verified after {took:.1f} min")
        verdict = f"recovered in {took:.1f} of {window_min:g} min"
    else:
        verdict = "not verified"
    low = min([0.0, *(b[1] for b in bars)])
    ax.set_xlim(low - window_min * 0.02, max([window_min, *(b[2] for b in bars)]) * 1.03)
    ax.set_xlabel("minutes since the rollback started")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    fig.suptitle(f"{title} — {verdict} (start {start:%Y-%m-%d %H:%M:%S} UTC)")
    plt.close(fig)
    return fig


def timeline(run: session.Runbook, recovery: Recovery) -> Any:
    """The recovery against the rollback window (the breach that triggered it included)."""
    if not run.execute:
        return "dry run: nothing ran, no recovery timeline"
    rows = recovery.timeline_rows()
    rows.insert(
        0,
        {
            "name": "recovery: start → verified",
            "status": "done" if recovery.verified_at else "failed",
            "started_at": recovery.started_at,
            "ended_at": recovery.verified_at or recovery.verify_ended or datetime.now(UTC),
        },
    )
    breach = recovery.plan.breach
    if isinstance(breach, dict) and breach.get("first_seen"):
        rows.insert(
            0,
            {
                "name": f"SLA breach: {breach.get('label', '')} on {breach.get('service', '?')}",
                "status": "breach",
                "started_at": breach["first_seen"],
                "ended_at": breach.get("last_seen") or breach["first_seen"],
            },
        )
    return plot_recovery(
        rows,
        recovery.started_at,
        run.params.schedule.rollback_window_minutes,
        recovery.verified_at,
        title=f"Rollback of {run.release} on {run.env}",
    )
