"""The HTML pieces every displayed object is built from: escaping, tables, fact rows."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

e = html.escape

# Keyed by a check's status value ("pass", …): `Status` is a StrEnum, so its members match.
# Glyphs every font has (DejaVu, Liberation…): emoji such as ✅ show as empty boxes on a
# machine without an emoji font.
ICON = {"pass": "✓", "warn": "⚠", "fail": "✗", "skip": "–"}
COLOUR = {"pass": "#e6f4ea", "warn": "#fff4e5", "fail": "#fde7e9", "skip": "#f1f3f4"}


def table(open_tag: str, head: Sequence[str], body: str) -> str:
    """``open_tag`` (``<table …>``), a header row of ``head`` and the ``body`` rows."""
    cells = "".join(f"<th>{h}</th>" for h in head)
    return f"{open_tag}<thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def fact_rows(facts: Iterable[tuple[str, object]]) -> str:
    """One ``<tr>`` per fact: the name as a left-aligned header cell, then its value."""
    return "".join(
        f"<tr><th style='text-align:left'>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in facts
    )


def seconds(value: float | None) -> str:
    """A step's duration for a table cell: two decimals, empty when it never ran."""
    return "" if value is None else f"{value:.2f}"


def waiting(what: str, how: str) -> str:
    """What a widget-backed table shows until its form is filled in."""
    return f"<p>{what}: waiting for the form above ({how}).</p>"
