"""How 05's steps keep their results in the step ledger, so a resumed run can show them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploybook.core.checks import Check, Status
from deploybook.core.steps import DONE, SKIPPED, Step
from deploybook.runbooks.rollback.plan import SECTION


@dataclass(frozen=True)
class Outcome:
    """A step's JSON result (kept for a resumed run) and the line the ledger shows."""

    value: Any
    text: str

    def as_dict(self) -> Any:
        return self.value

    def summary(self) -> str:
        return self.text


def result(step: Step) -> Any:
    """What a step returned: the outcome's value now, or its JSON when a rerun skipped it."""
    return step.value.value if isinstance(step.value, Outcome) else step.value


def step_check(name: str, step: Step, evidence: str, critical: bool = True) -> Check:
    if step.status == SKIPPED:
        return Check(name, SECTION, Status.PASS, f"resumed: {step.detail}", critical)
    if step.status != DONE:
        return Check(name, SECTION, Status.SKIP, f"dry run: {step.describe}", False)
    return Check(name, SECTION, Status.PASS, evidence, critical, step.duration_s or 0.0)
