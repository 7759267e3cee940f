"""The incident report: what broke, what was done, how long recovery took, as markdown.

Runbook 05 writes it beside its record and sends it; everything in it is scrubbed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.core.secrets import scrub


def _when(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _step_row(step: Any) -> dict[str, Any]:
    if hasattr(step, "as_dict"):
        step = step.as_dict()
    return dict(step)


def _bullets(items: Any) -> list[str]:
    if not items:
        return ["- (none recorded)"]
    if isinstance(items, Mapping):
        items = [
            {"what": k, **v} if isinstance(v, Mapping) else f"{k}: {v}" for k, v in items.items()
        ]
    if isinstance(items, str):
        items = [items]
    lines = []
    for item in items:
        if isinstance(item, Mapping):
            what = item.get("service") or item.get("what") or item.get("name") or "item"
            moved = ""
            if item.get("from") or item.get("to"):
                moved = f" {item.get('from', '?')} → {item.get('to', '?')}"
            extra = f" — {item['detail']}" if item.get("detail") else ""
            rest = {
                k: v
                for k, v in item.items()
                if k not in ("service", "what", "name", "from", "to", "detail")
            }
            facts = "; ".join(f"{k}: {v}" for k, v in rest.items())
            lines.append(f"- **{what}**{moved}{extra}{' (' + facts + ')' if facts else ''}")
        else:
            lines.append(f"- {item}")
    return lines


def incident_report(
    *,
    title: str,
    env: str,
    release: str,
    trigger: Any,
    steps: Iterable[Any],
    reverted: Any,
    started_at: str | datetime,
    verified_at: str | datetime | None = None,
    previous_release: str | None = None,
    rollback_window_min: float = 60,
    links: Mapping[str, str] | None = None,
    operator: str | None = None,
    run_id: str | None = None,
    notes: str | None = None,
) -> str:
    """The incident report as markdown: what broke, what was done, how long recovery took."""
    start, end = _when(started_at), _when(verified_at)
    lines = [f"# Incident: {title}", ""]
    lines += [
        f"- **Environment:** {env}",
        f"- **Release:** {release}"
        + (f" (rolled back to {previous_release})" if previous_release else ""),
    ]
    if operator:
        lines.append(f"- **Operator:** {operator}")
    if run_id:
        lines.append(f"- **Run:** {run_id}")
    lines.append(f"- **Report written:** {datetime.now(UTC).isoformat(timespec='seconds')}")
    lines += ["", "## Trigger", ""]
    lines += [str(trigger)] if isinstance(trigger, str) else _bullets(trigger)

    lines += ["", "## Recovery time", ""]
    if start and end:
        minutes = (end - start).total_seconds() / 60
        verdict = (
            "within the rollback window"
            if minutes <= rollback_window_min
            else f"**exceeded the rollback window by {minutes - rollback_window_min:.1f} min**"
        )
        lines.append(
            f"{minutes:.1f} min from start ({start.isoformat(timespec='seconds')}) to verified "
            f"({end.isoformat(timespec='seconds')}) against a {rollback_window_min:g}-min "
            f"rollback window: {verdict}."
        )
    else:
        lines.append(
            f"Started {start.isoformat(timespec='seconds') if start else '?'}; **not verified** "
            f"(rollback window {rollback_window_min:g} min)."
        )

    lines += [
        "",
        "## Timeline",
        "",
        "| step | start | end | duration | status |",
        "|---|---|---|---|---|",
    ]
    for row in map(_step_row, steps):
        duration = row.get("duration_s")
        shown = f"{duration:.1f}s" if isinstance(duration, int | float) else ""
        status = row.get("status", "")
        if row.get("detail") and status in ("failed", "skipped"):
            status = f"{status}: {row['detail']}"
        cells = [row.get("name", ""), row.get("started_at"), row.get("ended_at"), shown, status]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")

    lines += ["", "## What was reverted", ""] + _bullets(reverted)
    lines += ["", "## Records", ""]
    lines += [f"- [{name}]({target})" for name, target in (links or {}).items()] or ["- (none)"]
    if notes:
        lines += ["", "## Notes", "", notes]
    return scrub("\n".join(lines) + "\n")


def write_incident_report(path: str | os.PathLike[str], **fields: Any) -> Path:
    """Write `incident_report(**fields)` atomically next to the run's records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(incident_report(**fields), encoding="utf-8")
    os.replace(tmp, path)
    return path
