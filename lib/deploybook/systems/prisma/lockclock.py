"""How long a dry run held each lock: what live traffic waited behind.

A dry run applies every pending migration in ONE transaction that is rolled back at the
end, so a lock is held from the statement that first took it until that transaction ends
(or until a failed migration's savepoint is rolled back). That span, not the statement's
own duration, is how long traffic on the relation waited.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from deploybook.core.checks import Check, Status

Lock = tuple[str, str, str]  # relation, pg_locks mode, relkind

# What each mode makes ordinary traffic wait for (the rest block only DDL / maintenance).
BLOCKS = {
    "AccessExclusiveLock": "reads and writes",
    "ExclusiveLock": "writes",
    "ShareRowExclusiveLock": "writes",
    "ShareLock": "writes",
}
_KINDS = {"r": "table", "p": "table", "i": "index", "I": "index", "S": "sequence", "m": "view"}
TRANSACTION_END = "the dry run's transaction ended"


def mode_name(mode: str) -> str:
    """``AccessExclusiveLock`` as PostgreSQL's docs and LOCK TABLE name it: ACCESS EXCLUSIVE."""
    return " ".join(re.findall(r"[A-Z][a-z]*", mode.removesuffix("Lock"))).upper()


@dataclass(frozen=True)
class LockHold:
    """One lock a dry run took: on what, by which migration's statement, for how long."""

    relation: str
    kind: str
    mode: str
    taken_by: str
    statement: int
    held_s: float
    until: str
    created: bool = False  # created by the dry run itself: invisible to traffic

    @property
    def blocks(self) -> str | None:
        return None if self.created else BLOCKS.get(self.mode)


class LockClock:
    """Times each (relation, mode) from the statement that first took it to its release."""

    def __init__(self, existing: set[str] | None = None) -> None:
        self._existing = existing  # relations before the dry run (None: not known)
        self._open: dict[Lock, tuple[float, str, int]] = {}
        self.holds: list[LockHold] = []

    def taken(self, held: set[Lock], since: float, unit: str, statement: int) -> None:
        """``held`` after a statement that started at ``since``: new ones start now."""
        for lock in held:
            self._open.setdefault(lock, (since, unit, statement))

    def released(self, held: set[Lock], at: float, why: str) -> None:
        """After a savepoint rollback: locks no longer in ``held`` ended at ``at``."""
        for lock in [k for k in self._open if k not in held]:
            self._close(lock, at, why)

    def end(self, at: float) -> list[LockHold]:
        """The transaction ended at ``at``: every hold, worst first."""
        for lock in list(self._open):
            self._close(lock, at, TRANSACTION_END)
        return sorted(self.holds, key=lambda h: (-h.held_s, h.blocks is None, h.relation))

    def _close(self, lock: Lock, at: float, why: str) -> None:
        since, unit, statement = self._open.pop(lock)
        relation, mode, kind = lock
        created = self._existing is not None and relation not in self._existing
        held = round(at - since, 3)
        self.holds.append(
            LockHold(relation, _KINDS.get(kind, kind), mode, unit, statement, held, why, created)
        )


def _line(h: LockHold) -> str:
    return (
        f"{h.relation} ({h.kind}) {mode_name(h.mode)} held {h.held_s:.2f}s"
        + (f", blocked {h.blocks}" if h.blocks else "")
        + f" ({h.taken_by} statement {h.statement}"
        + ("" if h.until == TRANSACTION_END else f"; until {h.until}")
        + ")"
    )


def lock_check(holds: list[LockHold], section: str, limit: int = 8) -> Check:
    """The record of a live dry run's locks, worst first: those that blocked traffic on
    existing relations, then the harmless ones; locks on relations the dry run created are
    counted (nobody else can see those). A warning when traffic was blocked, never a gate."""
    blocking = [h for h in holds if h.blocks]
    harmless = [h for h in holds if not h.blocks and not h.created]
    created = [h for h in holds if h.created]
    if blocking:
        worst = blocking[0]
        summary = (
            f"{len(blocking)} of {len(holds)} locks blocked traffic on existing relations; "
            f"longest {worst.relation} {mode_name(worst.mode)} for {worst.held_s:.2f}s"
        )
    else:
        summary = f"{len(holds)} locks, none blocking ordinary reads or writes"
    if created:
        summary += (
            f"; {len(created)} on relations the dry run created (invisible to traffic, "
            f"longest {created[0].held_s:.2f}s)"
        )
    shown = [*blocking, *harmless][:limit]
    lines = [_line(h) for h in shown]
    if hidden := len(blocking) + len(harmless) - len(shown):
        lines.append(f"… and {hidden} more (in this check's data)")
    head = (
        f"{summary}. Each held from the statement that took it until the dry run's "
        "transaction ended, worst first:"
    )
    return Check(
        "dry run locks held (live)",
        section,
        Status.WARN if blocking else Status.PASS,
        "\n".join([head, *lines]) if holds else "no relation locked",
        critical=False,
        data=[asdict(h) for h in holds],
    )
