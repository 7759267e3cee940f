"""Runbook 04-smoke: plan sections 12, 14 and 15, one function per cell."""

from deploybook.runbooks.smoke.cells import (
    post_deploy_validation,
    record_breach,
    run_suite,
    watch_slas,
)
from deploybook.runbooks.smoke.spotchecks import record_spot_checks, spot_checks

__all__ = [
    "post_deploy_validation",
    "record_breach",
    "record_spot_checks",
    "run_suite",
    "spot_checks",
    "watch_slas",
]
