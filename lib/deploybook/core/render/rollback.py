"""What a rollback will do and what its restore overwrites, shown before anything changes.

NOTE: `RollbackPlan` and `Overwrite` belong to `runbooks.rollback`; core never imports
them, so parameters are typed `Any` and read only the attributes named in each docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deploybook.core.render.markup import e, fact_rows, table
from deploybook.core.secrets import scrub


def describe_breach(breach: Any) -> str:
    """One line for the trigger: the SLA that stayed breached, or why else this runs."""
    if not breach:
        return "no SLA breach recorded: a manual rollback"
    if not isinstance(breach, Mapping):
        return str(breach)
    label = breach.get("label") or breach.get("metric") or "SLA"
    peak = ""
    if breach.get("peak") is not None and breach.get("threshold") is not None:
        peak = f" (peak {breach['peak']:g} > {breach['threshold']:g})"
    sustained = f" for {breach['duration_s']:g} s" if breach.get("duration_s") is not None else ""
    limit = f" (sustain limit {breach['sustain_s']:g} s)" if breach.get("sustain_s") else ""
    since = f", first seen {breach['first_seen']}" if breach.get("first_seen") else ""
    return f"SLA breached: {label} on {breach.get('service', '?')}{peak}{sustained}{limit}{since}"


def rollback_plan_text(plan: Any) -> str:
    """A `RollbackPlan` (release, env, reverts, snapshot, database_at, applied_migrations,
    breach, records) as text: each revert with its command, the restore, the trigger."""
    lines = [f"Rollback of {plan.release} on {plan.env}"]
    lines += [
        f"  revert {r.service}: {r.current or '?'} → {r.target} ({r.source}): `{r.command}`"
        for r in plan.reverts
    ]
    lines.append(
        f"  restore {plan.database_at} from {plan.snapshot.path} "
        f"(sha256 {plan.snapshot.sha256[:16]}…, {plan.snapshot_source})"
    )
    lines.append(f"  migrations the rollout applied: {', '.join(plan.applied_migrations) or '-'}")
    lines.append(f"  trigger: {describe_breach(plan.breach)}")
    lines += [f"  record {name}: {path}" for name, path in plan.records.items()]
    return scrub("\n".join(lines))


def rollback_plan_html(plan: Any) -> str:
    """A `RollbackPlan` as a table of the reverts and a table of the restore's facts."""
    rows = "".join(
        f"<tr><td>{e(r.service)}</td><td>{e(r.current or 'unreachable')}</td>"
        f"<td><b>{e(r.target)}</b></td><td>{e(r.source)}</td>"
        f"<td><code>{e(r.command)}</code></td></tr>"
        for r in plan.reverts
    )
    snap = plan.snapshot
    facts = [
        ("database to restore", f"{plan.database_at}"),
        ("snapshot", f"{snap.path} ({snap.size:,} bytes, taken {snap.created_at})"),
        ("snapshot SHA-256", f"{snap.sha256} ({plan.snapshot_source})"),
        ("migrations the rollout applied", ", ".join(plan.applied_migrations) or "none"),
        ("trigger", describe_breach(plan.breach)),
        *((f"{name} record", path) for name, path in plan.records.items()),
    ]
    head = ("service", "running now", "roll back to", "from", "command")
    return scrub(
        f"<h4>Rollback of {e(plan.release)} on {e(plan.env)}</h4>"
        + table("<table>", head, rows)
        + f"<table>{fact_rows(facts)}</table>"
    )


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def overwrite_text(overwrite: Any) -> str:
    """An `Overwrite` (plan, rows(), removed_migrations): the tables' rows now and then."""
    plan = overwrite.plan
    snap = plan.snapshot
    lines = [
        f"The restore overwrites database {plan.database} at {plan.database_at}",
        f"with snapshot {Path(snap.path).name} taken {snap.created_at} "
        f"(sha256 {snap.sha256[:16]}…).",
        f"{'table':32} {'now':>10} {'snapshot':>10}",
    ]
    for name, now, then in overwrite.rows():
        mark = "" if now == then else "  ← changes"
        lines.append(f"{name:32} {_count(now):>10} {_count(then):>10}{mark}")
    lines.append(f"migrations removed: {', '.join(overwrite.removed_migrations) or 'none'}")
    return scrub("\n".join(lines))


def overwrite_html(overwrite: Any) -> str:
    """An `Overwrite` as the database and snapshot named, then rows now against the snapshot."""
    plan = overwrite.plan
    snap = plan.snapshot
    body = "".join(
        f"<tr style='background:{'#fff4e5' if now != then else 'none'}'><td>{e(name)}</td>"
        f"<td>{_count(now)}</td><td>{_count(then)}</td></tr>"
        for name, now, then in overwrite.rows()
    )
    return scrub(
        f"<p><b>The restore overwrites database <code>{e(plan.database)}</code> at "
        f"<code>{e(plan.database_at)}</code></b> with snapshot "
        f"<code>{e(Path(snap.path).name)}</code> taken {e(snap.created_at)} "
        f"(sha256 <code>{e(snap.sha256[:16])}…</code>).</p>"
        + table("<table>", ("table", "rows now", "rows in snapshot"), body)
        + f"<p>Migrations removed: {e(', '.join(overwrite.removed_migrations) or 'none')}</p>"
    )
