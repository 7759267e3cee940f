"""A run's steps: the rollout plan before it runs, then how each step went.

NOTE: the objects rendered here belong to the runbooks (`runbooks.rollout`,
`runbooks.rollback`); core never imports them, so parameters are typed `Any` and read
only the attributes named in each docstring.
"""

from __future__ import annotations

from typing import Any

from deploybook.core.render.checks import checks_html, checks_text
from deploybook.core.render.markup import e, seconds, table
from deploybook.core.secrets import scrub

_STEP_COLOURS = {"done": "#e6f4ea", "failed": "#fde7e9", "skipped": "#f1f3f4"}


def _rollout_title(rollout: Any) -> str:
    return f"{rollout.stage} rollout of {rollout.release} to {rollout.env}"


def _rollout_heading(rollout: Any) -> str:
    return f"{e(rollout.stage)} rollout of {e(rollout.release)} to {e(rollout.env)}"


def plan_text(plan: Any) -> str:
    """A rollout `Plan` (stage, release, env, steps, rows()) as numbered lines."""
    lines = [f"{_rollout_title(plan)}: {len(plan.steps)} steps"]
    lines += [f"{i:2}. {r['step']}: {r['what']}" for i, r in enumerate(plan.rows(), 1)]
    return scrub("\n".join(lines))


def plan_html(plan: Any) -> str:
    """A rollout `Plan` as a heading and a numbered table of what each step will do."""
    rows = "".join(
        f"<tr><td>{i}</td><td>{e(r['step'])}</td>"
        f"<td style='text-align:left'><code>{e(r['what'])}</code></td></tr>"
        for i, r in enumerate(plan.rows(), 1)
    )
    return scrub(
        f"<h4>{_rollout_heading(plan)}</h4>"
        + table("<table class='deploybook-plan'>", ("#", "step", "what"), rows)
    )


def rollout_text(result: Any) -> str:
    """A `RolloutResult` (stage, release, env, status, steps, error) as text lines."""
    lines = [f"{_rollout_title(result)}: {result.status.upper()}"]
    for s in result.steps:
        took = f"{s.duration_s:.2f}s" if s.duration_s is not None else ""
        first = s.detail.splitlines()[0] if s.detail else ""
        lines.append(f"  {s.status:8} {s.name:28} {took:>8}  {first}")
    if result.error:
        lines.append(f"error: {result.error}")
    return scrub("\n".join(lines))


def rollout_html(result: Any) -> str:
    """A `RolloutResult` as a heading, its attempt, a coloured steps table and any error."""
    rows = "".join(
        f"<tr style='background:{_STEP_COLOURS.get(s.status, '#fff')}'><td>{e(s.name)}</td>"
        f"<td>{s.status}</td><td>{s.started_at or ''}</td><td>{s.ended_at or ''}</td>"
        f"<td>{seconds(s.duration_s)}</td>"
        f"<td style='text-align:left;white-space:pre-wrap'>{e(s.detail)}</td></tr>"
        for s in result.steps
    )
    head = ("step", "status", "started", "ended", "seconds", "detail")
    return scrub(
        f"<h4>{_rollout_heading(result)}: {e(result.status.upper())}</h4>"
        f"<p>{e(result.attempt)}</p>"
        + table("<table class='deploybook-steps'>", head, rows)
        + (f"<p><b>{e(result.error)}</b></p>" if result.error else "")
    )


def recovery_text(recovery: Any) -> str:
    """A rollback's `Recovery` (ledger.steps, checks): one line a step, then its checks."""
    steps = "\n".join(f"{s.name}: {s.status} {s.detail}" for s in recovery.ledger.steps)
    return f"{steps}\n{checks_text(recovery.checks)}"


def recovery_html(recovery: Any) -> str:
    """A rollback's `Recovery` as its steps table followed by its checks table."""
    rows = "".join(
        f"<tr><td>{e(s.name)}</td><td>{e(s.status)}</td><td>{e(s.started_at or '')}</td>"
        f"<td>{seconds(s.duration_s)}</td>"
        f"<td style='text-align:left'>{e(s.detail or s.describe)}</td></tr>"
        for s in recovery.ledger.steps
    )
    head = ("step", "status", "started", "seconds", "detail")
    return table("<table>", head, rows) + checks_html(recovery.checks)
