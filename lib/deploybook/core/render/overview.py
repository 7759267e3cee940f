"""The release overview page: every record of a release, its links and the timeline.

NOTE: `Overview` and its rows belong to `session.overview`, which reads them from the
ledger; core never imports it, so parameters are typed `Any` and read only the
attributes named in each docstring.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deploybook.core.render.markup import e, table
from deploybook.core.secrets import scrub

CSS = """
.deploybook-overview{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
  color:#202124;max-width:1200px}
.deploybook-overview table{border-collapse:collapse;width:100%;font-size:13px}
.deploybook-overview th,.deploybook-overview td{border:1px solid #dadce0;padding:4px 6px;
  vertical-align:top;text-align:left}
.deploybook-overview th{background:#f1f3f4}
.deploybook-overview .db-passed{background:#e6f4ea}
.deploybook-overview .db-failed{background:#fde7e9}
.deploybook-overview .db-missing{background:#fff4e5}
.deploybook-overview .db-error{color:#a50e0e;font-size:12px;white-space:pre-wrap}
.deploybook-overview img{max-width:100%}
"""
_ICONS = {"passed": "✓", "failed": "✗", "open/abandoned": "○"}
_ERROR_LIMIT = 400
_HEAD = (
    "#",
    "runbook",
    "status",
    "started",
    "ended",
    "duration",
    "operator",
    "approvers",
    "checks",
    "record",
)


def fmt_time(moment: datetime | None) -> str:
    """``2025-01-01 10:00:00 UTC``, or ``?`` when unknown."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if moment else "?"


def fmt_duration(seconds: float | None) -> str:
    """``42.5 s`` under a minute, ``5 min 03 s`` above, ``?`` when unknown."""
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def link(target: Path | None, base: Path, label: str) -> str:
    """A relative ``<a>`` from ``base`` to ``target``; empty when the target is missing."""
    if target is None or not target.exists():
        return ""
    href = quote(os.path.relpath(target, base).replace(os.sep, "/"))
    return f'<a href="{e(href)}">{e(label)}</a>'


def window_note(overview: Any) -> str:
    """Where the release's last record ended against the deployment and rollback windows.

    Reads ``schedule``, ``window_start``, ``schedule_source`` and the rows' ``ended_at``.
    """
    sched, start = overview.schedule, overview.window_start
    ends = [r.ended_at for r in overview.rows if r.ended_at]
    span = (max(ends) - start).total_seconds() / 60 if ends else 0.0
    where = (
        "inside the deployment window"
        if span <= sched.window_minutes
        else "inside the rollback window"
        if span <= sched.window_minutes + sched.rollback_window_minutes
        else "after the rollback window closed"
    )
    origin = "configured" if sched.window_start else "the first record's start"
    return (
        f"T = {fmt_time(start)} ({origin}); deployment window {sched.window_minutes} min, "
        f"rollback window {sched.rollback_window_minutes} min, freeze T-{sched.freeze_hours}h. "
        f"The last record ended {span:.1f} min after T, {where}. "
        f"Schedule from {overview.schedule_source}."
        + (f" {overview.impact_note}" if getattr(overview, "impact_note", "") else "")
    )


def _row(r: Any, link_dir: Path) -> str:
    state = "missing" if r.missing else r.status
    links = " · ".join(
        anchor
        for anchor in (
            link(r.html, link_dir, "HTML"),
            link(r.review_html, link_dir, "review (no code)"),
            link(getattr(r, "diff_html", None), link_dir, "diff with the run before"),
            link(r.record, link_dir, "notebook"),
        )
        if anchor
    )
    if r.missing:
        links = f"record {e(r.record.name)} is missing"
    checks = e(r.summary)
    if r.failed_checks:
        checks += "<br>failed: " + e("; ".join(r.failed_checks))
    if r.error:
        error = r.error if len(r.error) <= _ERROR_LIMIT else r.error[:_ERROR_LIMIT] + "…"
        checks += f"<div class='db-error'>{e(error)}</div>"
    return (
        f"<tr class='db-row db-{e(state)}'><td>{r.seq}</td>"
        f"<td>{e(r.runbook)}</td>"
        f"<td class='db-status'>{_ICONS.get(r.status, '•')} {e(r.status)}</td>"
        f"<td>{fmt_time(r.started_at)}</td><td>{fmt_time(r.ended_at)}</td>"
        f"<td>{fmt_duration(r.duration_s)}</td><td>{e(r.operator)}</td>"
        f"<td>{e(', '.join(r.approvers)) or '—'}</td>"
        f"<td>{checks}</td><td>{links}</td></tr>"
    )


def overview_fragment(overview: Any, link_dir: Path) -> str:
    """The overview as an HTML fragment whose links are relative to ``link_dir``.

    Reads an `Overview`'s ``env``, ``release``, ``rows``, ``ledger``, ``counts()``,
    ``generated_at`` and ``timeline_png()``.
    """
    title = f"Release overview: {overview.release} on {overview.env}"
    if not overview.rows:
        return (
            f"<div class='deploybook-overview'><h3>{e(title)}</h3><p>No records yet "
            f"for {e(overview.release)} in {e(str(overview.ledger))}.</p></div>"
        )
    body = "".join(_row(r, link_dir) for r in overview.rows)
    tally = ", ".join(f"{n} {s}" for s, n in sorted(overview.counts().items()))
    png = base64.b64encode(overview.timeline_png()).decode("ascii")
    image = (
        f"<h4>Timeline (plan section 5)</h4><p>{e(window_note(overview))}</p>"
        "<img class='db-timeline' alt='timeline of the records against the deployment and "
        f"rollback windows' src='data:image/png;base64,{png}'>"
    )
    return (
        f"<div class='deploybook-overview'><h3>{e(title)}</h3>"
        f"<p>{len(overview.rows)} record(s): {e(tally)}. "
        f"Generated {fmt_time(overview.generated_at)}.</p>"
        + table("<table class='deploybook-records'>", _HEAD, body)
        + f"{image}</div>"
    )


def overview_page(overview: Any) -> str:
    """The whole page: inline CSS, embedded timeline, links relative to the page; scrubbed."""
    title = e(f"{overview.release} on {overview.env} — release overview")
    fragment = overview_fragment(overview, overview.path.parent)
    return scrub(
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{CSS}</style></head><body>{fragment}</body></html>\n"
    )


def overview_cell(overview: Any, link_dir: Path, page: Path | None) -> str:
    """The overview for a notebook cell, with a link to the written ``page``; scrubbed."""
    fragment = overview_fragment(overview, link_dir)
    if page is not None:
        fragment += f"<p>Page: {link(page, link_dir, page.name)}</p>"
    return scrub(f"<style>{CSS}</style>{fragment}")
