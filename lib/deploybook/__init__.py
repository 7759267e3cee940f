"""deploybook: deployment runbooks as parameterised Jupyter notebooks.

A notebook needs only a few names: `start` to begin a runbook, the check model, and the
runbook-specific modules (`preconditions`, …) reached as attributes.
"""

from importlib import import_module
from typing import Any

from .checks import Check, Checks, Status, gate
from .errors import ConfigError, DeploybookError, GateFailed, SecretMissing
from .session import Runbook, start

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

_SUBMODULES = {
    "approvals",
    "audit",
    "config",
    "db",
    "deploy",
    "design",
    "http",
    "migrations",
    "monitor",
    "notify",
    "plots",
    "preconditions",
    "report",
    "rollout",
    "rollback",
    "smoke",
    "steps",
}


def __getattr__(name: str) -> Any:
    # Runbook modules are imported on first use: pandas, httpx and psycopg are slow to import.
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'deploybook' has no attribute {name!r}")
