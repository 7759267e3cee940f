"""Every table, HTML fragment and text a runbook shows, in one place.

Objects stay data; their ``_repr_html_`` / ``to_text`` / ``__repr__`` are one-line calls
to the functions here, so a notebook cell, the CLI and the overview page read the same
objects. One module per kind of display: `checks`, `steps` (a rollout's plan and steps, a
rollback's recovery), `rollback` (its plan and what the restore overwrites), `notebook`
(the header, sign-offs, spot checks, a snapshot), `overview` (the release page), `incident`
(runbook 05's incident report, markdown); the HTML pieces they share are in `markup`.
"""

from deploybook.core.render.checks import checks_frame, checks_html, checks_text
from deploybook.core.render.incident import incident_report, write_incident_report
from deploybook.core.render.notebook import (
    header_html,
    header_text,
    signoffs_html,
    signoffs_text,
    snapshot_html,
    spot_checks_html,
    spot_checks_text,
)
from deploybook.core.render.overview import overview_cell, overview_page
from deploybook.core.render.panels import refusal_html, refusal_text
from deploybook.core.render.rollback import (
    describe_breach,
    overwrite_html,
    overwrite_text,
    rollback_plan_html,
    rollback_plan_text,
)
from deploybook.core.render.steps import (
    plan_html,
    plan_text,
    recovery_html,
    recovery_text,
    rollout_html,
    rollout_text,
)

__all__ = [
    "checks_frame",
    "checks_html",
    "checks_text",
    "describe_breach",
    "header_html",
    "header_text",
    "incident_report",
    "overview_cell",
    "overview_page",
    "overwrite_html",
    "overwrite_text",
    "plan_html",
    "plan_text",
    "recovery_html",
    "recovery_text",
    "refusal_html",
    "refusal_text",
    "rollback_plan_html",
    "rollback_plan_text",
    "rollout_html",
    "rollout_text",
    "signoffs_html",
    "signoffs_text",
    "snapshot_html",
    "spot_checks_html",
    "spot_checks_text",
    "write_incident_report",
]
