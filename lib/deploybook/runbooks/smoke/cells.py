"""The cells of runbook 04: smoke tests (plan section 12), the SLA watch (14), post-deploy
validation and manual spot checks (15) — one function per notebook cell.

Each takes the `Runbook`, records its checks on it, glues what 05-rollback reads and
returns what its cell shows. The work is in `suite`, `watch` (over `monitor`),
`validation` and `spotchecks`, which tests call directly with params.
"""

from __future__ import annotations

import html
from typing import Any

from deploybook.core.checks import Check, Checks
from deploybook.runbooks.smoke import suite, validation, watch
from deploybook.runbooks.smoke.expected import Expected, expected_versions
from deploybook.runbooks.smoke.monitor import INCONCLUSIVE, ROLLBACK, WatchResult
from deploybook.runbooks.smoke.spotchecks import SpotChecks, spot_check_results, spot_checks
from deploybook.session import confirm, scraps
from deploybook.session.runbook import Runbook, show

__all__ = [
    "Expected",
    "expected_version",
    "post_deploy_validation",
    "record_breach",
    "record_spot_checks",
    "run_suite",
    "sla_plot",
    "spot_checks",
    "watch_slas",
]


def expected_version(run: Runbook, expect_version: str | None = None) -> Expected | None:
    """The version every service must run: the ``expect_version`` parameter, else the
    newest executed 03-rollout (the release) or later 05-rollback (what it reverted to),
    else the release itself with a note. Recorded as a check; None when a record it would
    read cannot be trusted (that check fails, naming the record)."""
    found = expected_versions(run.env, run.release, expect_version or None)
    check = found if isinstance(found, Check) else found.check()
    run.record(check)
    show(f"expecting {check.evidence}")
    return found if isinstance(found, Expected) else None


def _versions(run: Runbook, expected: Expected | str | None) -> suite.Versions:
    if not isinstance(expected, Expected):
        return expected or None
    if expected.per_service:
        return {svc.name: expected.of(svc.name) for svc in run.params.services}
    return expected.version


def run_suite(run: Runbook, expected: Expected | str | None = None) -> Checks:
    """Health, the params' smoke checks and the ChatMock round trip (section 12); the
    expected version (`expected_version`, or a version) is checked on every service: one
    running another version fails its health check naming both."""
    versions = _versions(run, expected)
    return run.record(suite.run_suite(run.params, expect_version=versions))


def watch_slas(run: Runbook, window_s: float | None = None, progress: Any = True) -> WatchResult:
    """Watch 5xx rate, p95 latency and queue depth (section 14), record a check per service
    and glue every raw sample (`scraps.WatchSamples`); ``window_s`` overrides the params'
    ``watch_window_s``."""
    result = watch.watch_slas(run.params, window_s=window_s, progress=progress)
    run.record(result.checks)
    scraps.WatchSamples.model_validate(result.raw_samples()).glue()
    return result


def sla_plot(run: Runbook, result: WatchResult) -> Any:
    """The watched metrics against their thresholds: breaches red, unjudged spans amber."""
    return result.plot()


class Inconclusive(str):
    """What the watch could not judge, shown in amber in a notebook."""

    def _repr_html_(self) -> str:
        lines = "<br>".join(html.escape(line) for line in self.splitlines())
        style = "border-left:4px solid #f9ab00;background:#fef7e0;padding:6px"
        return f'<div style="{style}">{lines}</div>'


def record_breach(run: Runbook, result: WatchResult) -> None:
    """Glue the breach facts (`scraps.BreachFacts`, what 05-rollback reads) and recommend
    05-rollback only for a breach measured on data; say what is missing when the watch
    was inconclusive, and that no rollback is needed otherwise."""
    facts = watch.breach_facts(result)
    if facts is None:
        missing = result.missing()
        if result.outcome == INCONCLUSIVE:
            lines = [f"{svc}: {'; '.join(why)}" for svc, why in missing.items()]
            show(
                Inconclusive(
                    "SLA inconclusive: the watch could not confirm the SLA (not a breach; "
                    "no rollback recommended on missing data)\n" + "\n".join(lines)
                )
            )
            return
        show("no sustained SLA breach: no rollback recommended")
        return
    scraps.BreachFacts.model_validate(facts).glue()
    show(
        f"SLA breached: {facts['label']} on {facts['service']} for {facts['duration_s']:g} s "
        f"(sustain limit {facts['sustain_s']:g} s) — recommend: {ROLLBACK}"
    )


def post_deploy_validation(run: Runbook, expected: Expected | str | None = None) -> Checks:
    """Data integrity after the migration (section 15). Every migration of the checkout
    must be applied only when the release is known to run here (a parameter or a 03
    record); otherwise (assumed, or rolled back) unapplied migrations only warn."""
    if isinstance(expected, Expected):
        required = not expected.assumed and expected.version == run.release
    else:
        required = bool(expected)
    checks = validation.post_deploy_validation(
        run.params, release=run.release, require_applied=required
    )
    return run.record(checks)


def record_spot_checks(run: Runbook, spot: SpotChecks) -> Checks:
    """Glue the spot checks (`scraps.SpotCheckRecords`) and record one check per item:
    unconfirmed fails in a production role and warns otherwise."""
    if spot.widget is not None and spot.production and not spot.recorded:
        # Run All stops here rather than sealing a gate the lead has not answered yet.
        raise confirm.WaitingForLead(
            "waiting for you at the manual spot checks (required in production)",
            "tick what you checked, click Record spot checks, then run this cell again",
        )
    if spot.items:
        scraps.SpotCheckRecords.model_validate(spot.to_records()).glue()
    return run.record(spot_check_results(spot))
