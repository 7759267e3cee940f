"""deploybook: deployment runbooks as parameterised Jupyter notebooks.

A notebook needs only a few names: `start` to begin a runbook, and the runbook's own cells
as ``book.<runbook>.<cell>(run, …)`` from `deploybook.runbooks` (imported as ``book``).
Everything else is reachable by its package path but not advertised here.
"""

from deploybook.core.checks import Check, Checks, Status, gate
from deploybook.errors import ConfigError, DeploybookError, GateFailed, SecretMissing
from deploybook.session.runbook import Runbook, start

__all__ = [
    "Check",
    "Checks",
    "ConfigError",
    "DeploybookError",
    "GateFailed",
    "Runbook",
    "SecretMissing",
    "Status",
    "gate",
    "start",
]
