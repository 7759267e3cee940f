"""Outline of runbook 04-smoke: (kind, source) cells; markdown quotes the plan."""

from .common import GATE, PARAMETERS, start

NAME = "04-smoke"

CELLS = [
    (
        "md",
        """
# 04 — Smoke tests and monitoring

Deployment plan sections **12 Smoke tests**, **14 Monitoring** and **15 Post-deploy
validation**.
""",
    ),
    ("parameters", PARAMETERS),
    start("04-smoke"),
    *GATE,
]
