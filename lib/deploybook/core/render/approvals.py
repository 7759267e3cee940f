"""Signed sign-offs as a table: per role signed / missing / void, by whom, for what."""

from __future__ import annotations

from collections.abc import Sequence

from deploybook.core.render.markup import COLOUR, e, table

_STATE = {
    "signed": ("✓", COLOUR["pass"]),
    "void": ("✗", COLOUR["fail"]),
    "missing": ("☐", COLOUR["warn"]),
}
_HEAD = ("", "role", "state", "signed by (key)", "approves dry run", "valid until", "why void")


def approvals_html(rows: Sequence[dict[str, str]], caption: str) -> str:
    """The sign-off state under a caption naming the operator and what is to be approved."""
    body = "".join(
        f"<tr style='background:{_STATE[r['state']][1]}'><td>{_STATE[r['state']][0]}</td>"
        f"<td>{e(r['role'])}</td><td><b>{e(r['state'])}</b></td><td>{e(r['by'])}</td>"
        f"<td>{e(r['for'])}</td><td>{e(r['until'])}</td><td>{e(r['note'])}</td></tr>"
        for r in rows
    )
    head = "<p><b>Sign-offs (plan section 18), signed with SSH keys</b></p>"
    return f"{head}<pre>{e(caption)}</pre>" + table(
        '<table class="deploybook-signoffs">', _HEAD, body
    )


def approvals_text(rows: Sequence[dict[str, str]], caption: str) -> str:
    """The same, one line per role."""
    lines = [caption]
    for r in rows:
        line = f"{r['role']}: {r['state']}"
        if r["by"]:
            line += f" by {r['by']} for {r['for']} until {r['until']}"
        if r["note"]:
            line += f" — {r['note']}"
        lines.append(line)
    return "\n".join(lines)
