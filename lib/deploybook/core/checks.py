"""The Check model and the gate: a check's result is plain data.

Rendering (notebook HTML table, CLI text, a pandas frame) is `deploybook.core.render`;
it reads the same objects, and so do gates, scraps, the audit record and run-to-run diffs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from deploybook.core import render
from deploybook.core.secrets import scrub
from deploybook.errors import DeploybookError, GateFailed

EVIDENCE_LIMIT = 2000


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass
class Check:
    """One verified fact: what was checked, the outcome, and the evidence for it."""

    name: str
    section: str
    status: Status
    evidence: str = ""
    critical: bool = True
    duration_s: float = 0.0
    data: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.status = Status(self.status)
        self.evidence = _truncate(scrub(str(self.evidence)))
        self.data = scrub(self.data)

    @property
    def blocks(self) -> bool:
        """True when this check stops the gate: a failed critical check."""
        return self.critical and self.status is Status.FAIL

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = str(self.status)
        d["duration_s"] = round(self.duration_s, 3)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Check:
        return cls(
            **{
                k: d.get(k)
                for k in ("name", "section", "status", "evidence", "critical", "duration_s", "data")
            }
        )


def _truncate(text: str, limit: int = EVIDENCE_LIMIT) -> str:
    return (
        text
        if len(text) <= limit
        else text[: limit - 20] + f"… [{len(text) - limit + 20} more chars]"
    )


def run_check(
    name: str,
    section: str,
    probe: Callable[[], tuple[Status | str, str] | tuple[Status | str, str, Any]],
    *,
    critical: bool = True,
) -> Check:
    """Run ``probe`` and time it; a DeploybookError becomes a failed check, not a traceback.

    ``probe`` returns ``(status, evidence)`` or ``(status, evidence, data)``.
    """
    started = time.perf_counter()
    try:
        result = probe()
    except DeploybookError as exc:
        result = (Status.FAIL, f"{type(exc).__name__}: {exc}")
    duration = time.perf_counter() - started
    status, evidence, *rest = result
    return Check(
        name, section, Status(status), evidence, critical, duration, rest[0] if rest else None
    )


class Checks(list):
    """A list of checks; shown as a table in notebooks and as text in the CLI (`render`)."""

    def __init__(self, items: Iterable[Check] = ()) -> None:
        super().__init__(items)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self if c.blocks]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        counts = {s: sum(1 for c in self if c.status is s) for s in Status}
        return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no checks"

    def to_records(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self]

    def replace(self, new: Iterable[Check], stale: Callable[[Check], bool]) -> None:
        """Drop the checks a re-run supersedes (``stale``) and put ``new`` where the first of
        them stood, so the table keeps its order and the gate reads only the latest state."""
        new = list(new)
        kept: list[Check] = []
        at: int | None = None
        for check in self:
            if stale(check):
                at = len(kept) if at is None else at
            else:
                kept.append(check)
        at = len(kept) if at is None else at
        self[:] = kept[:at] + new + kept[at:]

    def to_frame(self):  # -> pandas.DataFrame
        return render.checks_frame(self)

    def to_text(self) -> str:
        return render.checks_text(self)

    def _repr_html_(self) -> str:
        return render.checks_html(self)

    def __repr__(self) -> str:
        return render.checks_text(self)


def gate(checks: Iterable[Check], name: str = "gate") -> Checks:
    """Raise GateFailed naming every failed critical check; return the checks otherwise."""
    checks = Checks(checks)
    failed = checks.failed
    if failed:
        names = "; ".join(
            f"{c.name} ({c.evidence.splitlines()[0] if c.evidence else 'failed'})" for c in failed
        )
        raise GateFailed(f"{name} failed: {len(failed)} critical check(s) failed: {names}", failed)
    return checks
