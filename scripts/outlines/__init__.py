"""Runbook outlines, one module per runbook, so each can be edited on its own."""

from . import dryrun, preconditions, rollback, rollout, smoke

OUTLINES = {m.NAME: m.CELLS for m in (preconditions, dryrun, rollout, smoke, rollback)}
