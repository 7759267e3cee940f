"""Runbook 03-rollout: plan sections 11, 13, 17 and 18, one function per cell."""

from deploybook.runbooks.rollout.cells import (
    check_gates,
    execute,
    plan,
    release_notes,
    signoffs,
    timeline,
)

__all__ = ["check_gates", "execute", "plan", "release_notes", "signoffs", "timeline"]
