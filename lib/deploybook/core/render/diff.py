"""A `RecordDiff` as a terminal table and as an HTML page for reviewers."""

from __future__ import annotations

import textwrap
from pathlib import Path

from deploybook.core.diff import RecordDiff
from deploybook.core.render.markup import COLOUR, ICON, e, table
from deploybook.core.secrets import scrub

_WIDTH = 60


def _cut(text: str, width: int = _WIDTH) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= width else one[: width - 1] + "…"


def _head(d: RecordDiff) -> list[str]:
    lines = []
    for side, label, meta in (("A", d.a_label, d.a_meta), ("B", d.b_label, d.b_meta)):
        facts = ", ".join(f"{k} {v}" for k, v in meta.items() if v and k != "env")
        lines.append(f"{side}: {label} ({facts})")
    return lines


def diff_text(d: RecordDiff) -> str:
    """Checks that changed (status, evidence, one side only), then parameters and facts."""
    lines = _head(d)
    if d.empty:
        return "\n".join([*lines, f"no differences ({d.same_checks} checks the same)"])
    if d.checks:
        lines.append("")
        lines.append(f"{'check':<38} {'change':<10} {'A':<6} {'B':<6} evidence (A → B)")
        for c in d.checks:
            lines.append(
                f"{_cut(c.name, 38):<38} {c.kind:<10} {c.a_status or '—':<6} "
                f"{c.b_status or '—':<6} {_cut(c.a_evidence, 50) or '—'}"
            )
            lines.append(f"{'':<63}→ {_cut(c.b_evidence, 50) or '—'}")
        lines.append(f"({d.same_checks} other checks the same)")
    if d.facts:
        lines.append("")
        lines.append(f"{'what':<10} {'key':<40} A → B")
        for f in d.facts:
            lines.append(f"{f.section:<10} {_cut(f.key, 40):<40} {_cut(f.a, 40)} → {_cut(f.b, 40)}")
    return scrub("\n".join(lines))


def diff_html(d: RecordDiff, title: str = "deploybook audit diff") -> str:
    """The same as a standalone page: a row per changed check, coloured by B's status."""
    head = "".join(f"<li>{e(line)}</li>" for line in _head(d))
    rows = "".join(
        f"<tr style='background:{COLOUR.get(c.b_status or c.a_status, '#fff')}'>"
        f"<td>{e(c.name)}</td><td>{e(c.kind)}</td>"
        f"<td>{ICON.get(c.a_status, '—')} {e(c.a_status)}</td>"
        f"<td>{ICON.get(c.b_status, '—')} {e(c.b_status)}</td>"
        f"<td><pre>{e(textwrap.fill(c.a_evidence, 70))}</pre></td>"
        f"<td><pre>{e(textwrap.fill(c.b_evidence, 70))}</pre></td></tr>"
        for c in d.checks
    )
    facts = "".join(
        f"<tr><td>{e(f.section)}</td><td><code>{e(f.key)}</code></td>"
        f"<td>{e(f.a)}</td><td>{e(f.b)}</td></tr>"
        for f in d.facts
    )
    body = [f"<h1>{e(title)}</h1><ul>{head}</ul>"]
    if d.empty:
        body.append(f"<p>No differences ({d.same_checks} checks the same).</p>")
    if d.checks:
        body.append(
            f"<h2>Checks that differ</h2><p>{d.same_checks} other checks are the same.</p>"
            + table(
                '<table class="deploybook-diff" border="1" cellspacing="0">',
                ("check", "change", "A", "B", "evidence A", "evidence B"),
                rows,
            )
        )
    if d.facts:
        body.append(
            "<h2>Parameters and facts that differ</h2>"
            + table('<table border="1" cellspacing="0">', ("what", "key", "A", "B"), facts)
        )
    style = "body{font-family:sans-serif} pre{white-space:pre-wrap;margin:0} td{vertical-align:top}"
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
    page += f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    return scrub(page)


def write_diff_html(d: RecordDiff, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(diff_html(d), encoding="utf-8")
    return target
