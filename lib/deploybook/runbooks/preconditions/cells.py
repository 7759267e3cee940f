"""The cells of runbook 01 (plan sections 1-3, 5, 6, 8-10 and 20), one function per cell.

Each takes the `Runbook`, records its checks on it (and glues the artifact SHAs the
rollout compares) and returns the new checks for the cell to show. The checks themselves
are in `release` (scope, inventory, schedule, tag, artifacts), `environments` (isolation,
parity), `testresults` (zero failures, fresh results, the plan's test files), `checks`
(epic, secrets, rate limits, checklist, health) and `design`, which take params and tests
call directly.
"""

from __future__ import annotations

from typing import Any

from deploybook.core.checks import Checks
from deploybook.runbooks.preconditions import (
    checks,
    database,
    design,
    environments,
    release,
    testresults,
)
from deploybook.session import approvals, scraps
from deploybook.session.runbook import Runbook

__all__ = [
    "artifacts",
    "check_signoffs",
    "checklist",
    "collect_signoffs",
    "database_reachable",
    "design_rules",
    "embedding_decision",
    "env_parity",
    "environments_isolated",
    "epic_done",
    "health_endpoints",
    "inventory",
    "rate_limits_reviewed",
    "release_tag",
    "schedule",
    "schedule_plot",
    "scope",
    "secrets_configured",
    "zero_test_failures",
]


def scope(run: Runbook) -> Checks:
    """Section 1: the release's changes stay inside the epic's scope."""
    return run.record(release.scope(run.params, run.release, run.previous_release))


def inventory(run: Runbook) -> Checks:
    """Section 2: the change inventory in params matches the release."""
    return run.record(release.inventory(run.params, run.release))


def environments_isolated(run: Runbook) -> Checks:
    """Section 3: staging and production share neither database nor API keys."""
    return run.record(environments.environments_isolated(run.params))


def schedule(run: Runbook) -> Checks:
    """Section 5: the deployment window and the freeze."""
    return run.record(release.schedule(run.params, run.release))


def schedule_plot(run: Runbook) -> Any:
    """Section 5: the window, the freeze and the rollback window on one timeline."""
    return release.schedule_plot(run.params, run.release)


def epic_done(run: Runbook) -> Checks:
    """Section 6: every story of the epic is done."""
    return run.record(checks.epic_done(run.params, run.release))


def embedding_decision(run: Runbook) -> Checks:
    """Section 6: the embedding dimension decision is recorded (not critical)."""
    return run.record(checks.embedding_decision(run.params, run.release))


def zero_test_failures(run: Runbook) -> Checks:
    """Section 6: the configured test commands (or JUnit reports) show zero failures."""
    return run.record(testresults.zero_test_failures(run.params, run.release))


def secrets_configured(run: Runbook) -> Checks:
    """Section 6: every required secret is set, real and well-formed."""
    return run.record(checks.secrets_configured(run.params))


def rate_limits_reviewed(run: Runbook, reviewed_by: str | None) -> Checks:
    """Section 6: a named reviewer attests the external rate limits."""
    return run.record(checks.rate_limits_reviewed(run.params, reviewed_by, run.release))


def release_tag(run: Runbook) -> Checks:
    """Section 8: the release tag is SemVer and on the protected branch."""
    return run.record(release.release_tag(run.params, run.release, run.previous_release))


def artifacts(run: Runbook) -> Checks:
    """Section 8: record the artifact SHAs at the tag and glue them (`scraps.Artifacts`)
    for the production rollout to compare with staging's."""
    found = release.artifacts(run.params, run.release)
    shas = next((c.data for c in found if c.data), None)
    if shas:
        scraps.Artifacts.model_validate(shas).glue()
    return run.record(found)


def env_parity(run: Runbook) -> Checks:
    """Section 9: environment keys against ``.env.example`` and the peer environment."""
    return run.record(environments.env_parity(run.params, run.release))


def checklist(run: Runbook) -> Checks:
    """Section 10: CI green, rate-limit guard, PII redaction, feature flag defaults."""
    return run.record(checks.checklist(run.params, run.release))


def health_endpoints(run: Runbook) -> Checks:
    """Section 10: every service's health endpoint answers."""
    return run.record(checks.health_endpoints(run.params))


def database_reachable(run: Runbook) -> Checks:
    """Section 10: the target database answers; its server version is reported."""
    return run.record(database.database_reachable(run.database_url))


def collect_signoffs(run: Runbook, approvals_given: dict[str, Any] | None) -> Any:
    """Section 10: the sign-offs from the ``approvals`` parameter or the form."""
    return approvals.collect_signoffs(run.params.signoff_roles, approvals_given, run.operator)


def check_signoffs(run: Runbook, signoffs: approvals.SignOffs) -> Checks:
    """Section 10: who has signed off so far (01 neither requires all nor a second person)."""
    return run.record(
        approvals.check_signoffs(
            signoffs,
            run.params.signoff_roles,
            run.operator,
            require_all=False,
            require_distinct_approver=False,
        )
    )


def design_rules(run: Runbook) -> Checks:
    """Section 20: the design-system rules hold in the files the release changes."""
    return run.record(design.design_rules(run.params, run.release))
