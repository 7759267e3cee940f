"""The smaller things a runbook shows: its "you are here" header, the sign-offs, the
manual spot checks and a snapshot's facts.

NOTE: these objects live above core (`session`, `runbooks.smoke`, `systems.postgres`);
core never imports them, so parameters are typed `Any` and read only the attributes
named in each docstring.
"""

from __future__ import annotations

from typing import Any

from deploybook.core.render.markup import e, fact_rows, table, waiting


def header_html(run: Any) -> str:
    """A `Runbook` (name, env, release, execute, facts()): where you are and the mode."""
    mode = (
        "<b style='color:#b00'>EXECUTE: this run changes systems</b>"
        if run.execute
        else "<b style='color:#070'>DRY RUN: nothing will be changed</b>"
    )
    if getattr(run, "template", False):
        mode = (
            "<b style='color:#b00'>template — open a prepared copy with "
            f"<code>deploybook open {e(run.name)} --env {e(run.env)} --release "
            f"{e(run.release)}</code></b> (execute=True is refused here)<br>" + mode
        )
    return (
        f"<div class='deploybook-header'><h3>You are here: {e(run.name)} "
        f"on {e(run.env)} for {e(run.release)}</h3>"
        f"<p>{mode}</p><table>{fact_rows(run.facts().items())}</table></div>"
    )


def header_text(run: Any) -> str:
    """A `Runbook` in one line: name, env, release, mode and operator."""
    mode = "EXECUTE" if run.execute else "DRY RUN"
    return f"{run.name} on {run.env} for {run.release} [{mode}] operator={run.operator}"


def signoffs_html(signoffs: Any) -> str:
    """`SignOffs` (a list of role, name, at, source; widget) as a table, or "waiting"."""
    if signoffs.widget is not None and not signoffs:
        return waiting("Sign-offs", "fill it in, then click Record")
    rows = "".join(
        f"<tr><td>{e(s.role)}</td><td>{e(s.name)}</td><td>{e(s.at)}</td><td>{e(s.source)}</td></tr>"
        for s in signoffs
    )
    head = ("role", "approver", "at", "source")
    operator = getattr(signoffs, "operator", "")
    caption = f"<p>operator: {e(operator)}</p>" if operator else ""
    return caption + table('<table class="deploybook-signoffs">', head, rows)


def signoffs_text(signoffs: Any) -> str:
    """`SignOffs` as one line per approval."""
    if not signoffs:
        return "SignOffs(none)"
    return "\n".join(f"{s.role}: {s.name} at {s.at} ({s.source})" for s in signoffs)


def spot_checks_html(spot: Any) -> str:
    """`SpotChecks` (to_records(), widget): every item ticked or not, or "waiting"."""
    if spot.widget is not None and not spot:
        return waiting("Spot checks", "tick, then click Record")
    rows = "".join(
        f"<tr><td>{'✓' if r['confirmed'] else '☐'}</td><td>{e(r['item'])}</td>"
        f"<td>{e(r['by'] or '')}</td><td>{e(r['at'] or '')}</td></tr>"
        for r in spot.to_records()
    )
    head = ("", "spot check", "checked by", "at")
    return table('<table class="deploybook-spot-checks">', head, rows)


def spot_checks_text(spot: Any) -> str:
    """`SpotChecks` as a checklist: ``[x] item — who at when``."""
    return "\n".join(
        f"[{'x' if r['confirmed'] else ' '}] {r['item']}"
        + (f" — {r['by']} at {r['at']}" if r["confirmed"] else "")
        for r in spot.to_records()
    )


def snapshot_html(snap: Any) -> str:
    """A `Snapshot` (path, size, format, sha256, server_version, created_at, duration_s)."""
    return (
        f"<b>snapshot</b> <code>{snap.path}</code> — {snap.size:,} bytes, {snap.format}, "
        f"sha256 <code>{snap.sha256[:16]}…</code>, PostgreSQL {snap.server_version}, "
        f"taken {snap.created_at} in {snap.duration_s:.1f}s"
    )
