"""Runbook 01-preconditions: plan sections 1-3, 5, 6, 8-10 and 20, one function per cell."""

from deploybook.runbooks.preconditions.cells import (
    artifacts,
    checklist,
    embedding_decision,
    env_parity,
    environments_isolated,
    epic_done,
    health_endpoints,
    inventory,
    rate_limits_reviewed,
    release_tag,
    schedule,
    schedule_plot,
    scope,
    secrets_configured,
    zero_test_failures,
)
from deploybook.runbooks.preconditions.design import design_rules
from deploybook.session.approvals import check_signoffs, collect_signoffs

__all__ = [
    "artifacts",
    "check_signoffs",
    "checklist",
    "collect_signoffs",
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
