"""Checks as a notebook table, CLI text and a pandas frame: the same `Check` objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploybook.core.render.markup import COLOUR, ICON, e, table

if TYPE_CHECKING:
    import pandas

    from deploybook.core.checks import Checks

_HEAD = ("status", "check", "section", "critical", "evidence", "seconds")
SHORT_LINES, SHORT_CHARS = 6, 400  # evidence longer than this is summarised


def checks_html(checks: Checks) -> str:
    """The checks table a notebook cell shows, with the summary line under it."""
    rows = []
    for c in checks:
        evidence = _evidence_html(c.evidence)
        rows.append(
            f'<tr style="background:{COLOUR[c.status]}" class="db-check db-{c.status}">'
            f"<td>{ICON[c.status]} {c.status}</td><td>{e(c.name)}</td>"
            f"<td>{e(c.section)}</td><td>{'yes' if c.critical else 'no'}</td>"
            f'<td style="text-align:left;white-space:pre-wrap;overflow-wrap:anywhere">'
            f"{evidence}</td>"
            f"<td>{c.duration_s:.2f}</td></tr>"
        )
    return (
        table('<table class="deploybook-checks">', _HEAD, "".join(rows))
        + f"<p><b>{e(checks.summary())}</b></p>"
    )


def _evidence_html(evidence: str) -> str:
    """Evidence as it fits a table cell: a long list (lock names, many rows) is summarised
    by its start, with the whole of it under a "show all" detail."""
    lines = evidence.splitlines()
    if len(lines) <= SHORT_LINES and len(evidence) <= SHORT_CHARS:
        return e(evidence)
    head = lines[0] if len(lines[0]) <= SHORT_CHARS else lines[0][:SHORT_CHARS] + "…"
    more = f"{len(lines)} lines" if len(lines) > 1 else f"{len(evidence)} characters"
    return f"{e(head)}<details><summary>show all ({more})</summary>{e(evidence)}</details>"


def checks_text(checks: Checks) -> str:
    """The checks as CLI text: one line each (evidence's first line), then the summary."""
    width = max((len(c.name) for c in checks), default=5)
    lines = [f"{'STATUS':6}  {'CHECK':{width}}  SECTION  EVIDENCE"]
    for c in checks:
        first = c.evidence.splitlines()[0] if c.evidence else ""
        lines.append(f"{c.status.upper():6}  {c.name:{width}}  {c.section:7}  {first}")
    lines.append(f"— {checks.summary()}")
    return "\n".join(lines)


def checks_frame(checks: Checks) -> pandas.DataFrame:
    """The checks as a DataFrame (pandas is imported here, lazily: it is slow to import)."""
    import pandas as pd

    rows = [
        {
            "status": f"{ICON[c.status]} {c.status}",
            "check": c.name,
            "section": c.section,
            "critical": "yes" if c.critical else "no",
            "evidence": c.evidence,
            "seconds": round(c.duration_s, 2),
        }
        for c in checks
    ]
    return pd.DataFrame(rows, columns=list(_HEAD))
