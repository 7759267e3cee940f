"""Checks as a notebook table, CLI text and a pandas frame: the same `Check` objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploybook.core.render.markup import COLOUR, ICON, e, table

if TYPE_CHECKING:
    import pandas

    from deploybook.core.checks import Checks

_HEAD = ("status", "check", "section", "critical", "evidence", "seconds")


def checks_html(checks: Checks) -> str:
    """The checks table a notebook cell shows, with the summary line under it."""
    rows = []
    for c in checks:
        evidence = e(c.evidence).replace("\n", "<br>")
        rows.append(
            f'<tr style="background:{COLOUR[c.status]}" class="db-check db-{c.status}">'
            f"<td>{ICON[c.status]} {c.status}</td><td>{e(c.name)}</td>"
            f"<td>{e(c.section)}</td><td>{'yes' if c.critical else 'no'}</td>"
            f'<td style="text-align:left;white-space:pre-wrap">{evidence}</td>'
            f"<td>{c.duration_s:.2f}</td></tr>"
        )
    return (
        table('<table class="deploybook-checks">', _HEAD, "".join(rows))
        + f"<p><b>{e(checks.summary())}</b></p>"
    )


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
