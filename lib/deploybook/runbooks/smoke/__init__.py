"""Runbook 04-smoke: plan sections 12, 14 and 15, one function per cell."""

from deploybook.runbooks.smoke.cells import (
    expected_version,
    post_deploy_validation,
    record_breach,
    record_spot_checks,
    run_suite,
    sla_plot,
    spot_checks,
    watch_slas,
)

__all__ = [
    "expected_version",
    "post_deploy_validation",
    "record_breach",
    "record_spot_checks",
    "run_suite",
    "sla_plot",
    "spot_checks",
    "watch_slas",
]
