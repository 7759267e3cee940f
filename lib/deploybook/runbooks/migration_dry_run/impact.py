"""02's answer to "what will the migrations do to production?" — the impact table, the
advice, and the fit in the deployment window (plan section 5).

The dry run measured every pending statement on a full-size copy (`systems.prisma.meter`);
`impact_checks` turns that into the "migration impact" and "migration advice" checks, and
the `impact` cell adds the window fit — the migrations' measured time plus the other
rollout steps as long as they took in the latest 03 record (this environment's, else its
staging environment's), against ``schedule.window_minutes`` — and glues it all as the
`scraps.MigrationImpact` 03 shows beside "apply migrations".
"""

from __future__ import annotations

from typing import Any

from deploybook.config.impact import ImpactSpec
from deploybook.core.checks import Check, Status
from deploybook.core.render.markup import e, table
from deploybook.core.secrets import scrub
from deploybook.session import records, scraps
from deploybook.session.runbook import Runbook
from deploybook.systems.prisma.advice import advise
from deploybook.systems.prisma.dryrun import DryRunReport
from deploybook.systems.prisma.impact import impact as measure_impact

SECTION = "7"
IMPACT, ADVICE, WINDOW = "migration impact", "migration advice", "deployment window fit"
MIGRATE_STEP = "apply migrations"


def impact_checks(report: DryRunReport, target: dict[str, Any], spec: ImpactSpec) -> list[Check]:
    """ "migration impact" (per table blocked time, worst first; warn on overruns) and, where
    a standard fix applies, "migration advice"; both non-critical, data for the scrap."""
    runs = [r.as_dict() for r in report.statements]
    found = measure_impact(runs, report.tables, report.budget_s)
    advice = advise(runs, report.tables, spec.big_table_rows)
    on = "the verified scratch copy" if target.get("verified_copy") else target.get("target")
    head = (
        f"{len(found.statements)} statement row(s) measured on {on}: "
        f"{'at least ' if found.at_least else ''}{found.total_s:.2f} s in all"
    )
    lines = found.lines() or ["no existing table has its reads or writes blocked"]
    if found.overruns:
        head += f"; {len(found.overruns)} over the {report.budget_s:g} s budget"
    data = {**found.as_dict(), "lines": found.lines(), "advice": advice, "target": target}
    checks = [
        Check(
            IMPACT,
            SECTION,
            Status.WARN if found.overruns else Status.PASS,
            "\n".join([head + ". Blocked in production, worst first:", *lines]),
            critical=False,
            data=data,
        )
    ]
    if advice:
        checks.append(
            Check(
                ADVICE,
                SECTION,
                Status.WARN,
                "\n".join(a["advice"] for a in advice),
                critical=False,
                data=advice,
            )
        )
    return checks


def _measured(run: Runbook) -> dict[str, Any] | None:
    found = next((c for c in reversed(run.checks) if c.name == IMPACT), None)
    return found.data if found is not None and isinstance(found.data, dict) else None


def other_steps(run: Runbook) -> tuple[list[dict[str, Any]], str]:
    """The rollout's other steps as long as they took in the latest completed 03 rollout of
    this environment, else of its staging environment (builds are staging's only)."""
    params = run.params
    envs = [run.env]
    if params.environment.is_production and params.environment.staging_env:
        envs.append(params.environment.staging_env)
    builds = {b.name for b in params.rollout.build}
    for env in envs:
        try:
            record = records.find(
                env, run.release, "03-rollout", passed=True, having=scraps.RolloutOutcome
            )
        except records.RecordUntrusted as exc:
            return [], f"no estimate: {exc}"
        outcome = record.read(scraps.RolloutOutcome) if record is not None else None
        if outcome is None or not outcome.completed:  # a plan or a refusal: no step times
            continue
        steps = [
            {"name": s["name"], "seconds": float(s["duration_s"])}
            for s in outcome.steps
            if s.get("duration_s") is not None
            and s.get("name") != MIGRATE_STEP
            and not (env != run.env and s.get("name") in builds)
        ]
        return steps, f"{env}'s 03 record {record.path.name}"
    return [], "no 03 record yet"


def _share(part: float, whole: float) -> str:
    share = part / whole if whole else 0.0
    return "under 1%" if share < 0.01 else f"{share:.0%}"


def window_fit(
    migrations_s: float,
    at_least: bool,
    steps: list[dict[str, Any]],
    source: str,
    window_min: float,
    share_warn: float,
) -> dict[str, Any]:
    """The migrations (and the other steps, where known) against the deployment window."""
    window_s = window_min * 60
    others = sum(s["seconds"] for s in steps)
    total = migrations_s + others
    share = migrations_s / window_s if window_s else 0.0
    over_share = share > share_warn
    over = total > window_s
    verdict = (
        "does NOT fit the window"
        if over
        else f"migrations alone take over {share_warn:.0%} of the window"
        if over_share
        else "fits the window"
    )
    text = (
        f"migrations {'at least ' if at_least else ''}{migrations_s:.2f} s, "
        f"{_share(migrations_s, window_s)} of the {window_min:g} min deployment window "
        "(plan section 5)"
    )
    if steps:
        text += (
            f"; with the other {len(steps)} rollout steps as long as in {source} "
            f"({others:.2f} s): {total:.2f} s, {_share(total, window_s)} of it"
        )
    else:
        text += f"; other rollout steps not estimated ({source})"
    return {
        "migrations_s": migrations_s,
        "at_least": at_least,
        "other_steps_s": round(others, 3),
        "steps": steps,
        "source": source,
        "total_s": round(total, 3),
        "window_minutes": window_min,
        "share": round(share, 6),
        "share_warn": share_warn,
        "fits": not over,
        "verdict": verdict,
        "text": f"{verdict}: {text}",
    }


def _size(size: int | None) -> str:
    if size is None:
        return ""
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size // 1000} kB"


def _count(rows: int | None) -> str:
    return "" if rows is None else f"{rows:,}"


class ImpactView:
    """The impact table, the per-table lines, the advice and the window fit, displayed."""

    def __init__(self, facts: scraps.MigrationImpact) -> None:
        self.facts = facts

    def to_text(self) -> str:
        f = self.facts
        lines = [*(f.lines or ["no existing table has its reads or writes blocked"])]
        lines += [a["advice"] for a in f.advice]
        if f.window:
            lines.append(f"window: {f.window['text']}")
        return scrub("\n".join(lines))

    __repr__ = to_text

    def _repr_html_(self) -> str:
        f = self.facts
        body = "".join(
            f"<tr><td>{e(r['migration'])} #{r['statement']}</td><td><code>{e(r['gist'])}</code>"
            f"</td><td>{e(r['table'])}</td><td>{_size(r['bytes'])}</td>"
            f"<td>{_count(r['rows'])}</td>"
            f"<td>{e(r['lock'])}</td><td>{e(r['blocks'])}</td>"
            f"<td>{r['duration_s']:.2f} s{' (budget hit)' if r['outcome'] == 'overrun' else ''}"
            f"{' — rewrite' if r['rewrite'] else ''}</td></tr>"
            for r in f.statements
        )
        head = ("statement", "what", "table", "size", "rows", "lock", "blocks", "time")
        lines = "".join(f"<li>{e(line)}</li>" for line in f.lines) or "<li>nothing blocked</li>"
        advice = "".join(f"<li>{e(a['advice'])}</li>" for a in f.advice)
        window = f"<p><b>Window fit:</b> {e(f.window['text'])}</p>" if f.window else ""
        where = f.target.get("scratch") or f.target.get("target", "")
        copy = " (the verified copy: one restore)" if f.target.get("verified_copy") else ""
        return scrub(
            f"<h4>Migration impact on production</h4><p>Measured on {e(str(where))}{copy}. "
            "Blocked in production, worst first:</p>"
            f"<ul>{lines}</ul>{window}"
            + (f"<p><b>Advice</b></p><ul>{advice}</ul>" if advice else "")
            + table("<table class='deploybook-impact'>", head, body)
        )


def impact(run: Runbook) -> ImpactView | Check:
    """The dry run's impact table with its window fit; records "deployment window fit"
    (a warning when the migrations take more than ``database.impact.window_share_warn`` of
    the window or the rollout does not fit) and glues `scraps.MigrationImpact`."""
    measured = _measured(run)
    if measured is None:
        skipped = Check(WINDOW, SECTION, Status.SKIP, "no dry run measured above", critical=False)
        run.record(skipped)
        return skipped
    spec = run.params.database.impact
    steps, source = other_steps(run)
    fit = window_fit(
        measured["total_s"],
        measured["at_least"],
        steps,
        source,
        run.params.schedule.window_minutes,
        spec.window_share_warn,
    )
    warn = not fit["fits"] or fit["share"] > spec.window_share_warn
    run.record(
        Check(
            WINDOW,
            "5",
            Status.WARN if warn else Status.PASS,
            fit["text"],
            critical=False,
            data=fit,
        )
    )
    facts = scraps.MigrationImpact(
        target=measured.get("target", {}),
        lines=measured["lines"],
        statements=measured["statements"],
        tables=measured["tables"],
        advice=measured.get("advice", []),
        total_s=measured["total_s"],
        at_least=measured["at_least"],
        budget_s=measured.get("budget_s"),
        window=fit,
    ).glue()
    return ImpactView(facts)


def plan_note(env: str, release: str) -> str:
    """What 03's plan shows beside "apply migrations": the latest 02 record's impact."""
    try:
        record = records.find(env, release, "02-migration-dry-run", having=scraps.MigrationImpact)
    except records.RecordUntrusted as exc:
        return f"; impact unknown ({exc})"
    if record is None:
        return "; impact not measured (no 02 record with it)"
    facts = record.read(scraps.MigrationImpact)
    shown = "; ".join(facts.lines[:3]) or "no table's reads or writes blocked"
    window = f"; {facts.window['verdict']}" if facts.window else ""
    return f"; impact measured by 02 ({record.path.name}): {shown}{window}"
