"""Which version 04 expects each service to run (plan section 12), by default from records.

After an executed 03-rollout every service must run the release; after a later executed
05-rollback, what that rollback reverted it to (the previous release). The newest of the
two (ledger order, records verified by `session.records`) decides; the ``expect_version``
parameter overrides both; with neither record the release itself is expected, with a note.
Deciding is pure (`decide`); `expected_versions` reads the records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deploybook.core.checks import Check, Status
from deploybook.errors import AuditError
from deploybook.session import records, scraps

SECTION = "12"
NAME = "expected running version"
ROLLOUT, ROLLBACK = "03-rollout", "05-rollback"


@dataclass(frozen=True)
class Expected:
    """The version each service must report, and where that expectation came from."""

    version: str  # every service's, unless ``per_service`` says otherwise
    source: str
    per_service: dict[str, str] = field(default_factory=dict)
    assumed: bool = False  # no record said so: the release itself, by default

    def of(self, service: str) -> str:
        return self.per_service.get(service, self.version)

    def describe(self) -> str:
        others = {s: v for s, v in self.per_service.items() if v != self.version}
        extra = "; " + ", ".join(f"{s} {v}" for s, v in others.items()) if others else ""
        return f"{self.version}{extra} ({self.source})"

    def check(self) -> Check:
        """The expectation as a check: a note (warn, not critical) when it is only assumed."""
        status = Status.WARN if self.assumed else Status.PASS
        data = {"version": self.version, "per_service": dict(self.per_service)}
        return Check(NAME, SECTION, status, self.describe(), False, data=data)


def decide(
    release: str,
    parameter: str | None,
    rollout: tuple[str, scraps.RolloutOutcome] | None,
    rollback: tuple[str, scraps.RollbackOutcome] | None,
    env: str = "",
) -> Expected:
    """Pure: the expectation from the parameter, else the newest executed 03 or 05 (each
    given as (record name, outcome), newest last in ledger order: ``rollback`` only when it
    is later than ``rollout``), else the release, assumed."""
    if parameter:
        return Expected(parameter, "parameter expect_version")
    if rollback is not None:
        name, outcome = rollback
        targets = {str(r.get("service")): str(r.get("to")) for r in outcome.reverted if r.get("to")}
        common = set(targets.values())
        version = common.pop() if len(common) == 1 else (outcome_previous(outcome) or release)
        return Expected(version, f"{ROLLBACK} record {name} reverted the services", targets)
    if rollout is not None:
        name, outcome = rollout
        return Expected(release, f"{ROLLOUT} record {name}: {outcome.status} rollout of {release}")
    where = f" of {env} {release}" if env else ""
    return Expected(
        release,
        f"no executed {ROLLOUT} or {ROLLBACK} record{where}: the release itself is expected",
        assumed=True,
    )


def outcome_previous(outcome: scraps.RollbackOutcome) -> str | None:
    """The one version a rollback reverted every service to, if its record says so."""
    versions = {str(r.get("to")) for r in outcome.reverted if r.get("to")}
    return versions.pop() if len(versions) == 1 else None


def _latest(env: str, release: str, runbook: str, model: type[Any]) -> tuple[Any, Any] | None:
    record = records.find(env, release, runbook, having=model)
    if record is None:
        return None
    return record, record.read(model)


def expected_versions(env: str, release: str, parameter: str | None = None) -> Expected | Check:
    """The expectation for ``env`` and ``release``; a failed check when a record it would
    read cannot be trusted (edited, deleted, chain broken), naming the record."""
    if parameter:
        return decide(release, parameter, None, None, env)
    try:
        rollout = _latest(env, release, ROLLOUT, scraps.RolloutOutcome)
        rollback = _latest(env, release, ROLLBACK, scraps.RollbackOutcome)
    except AuditError as exc:
        evidence = f"{exc}; pass expect_version='vX.Y.Z' to check against a version you name"
        return Check(NAME, SECTION, Status.FAIL, evidence)
    executed = rollout if rollout and rollout[1].execute else None
    reverted = rollback if rollback and not rollback[1].dry_run else None
    if executed and reverted and reverted[0].entry.get("seq", 0) < executed[0].entry.get("seq", 0):
        reverted = None  # a rollout after the rollback: the release again
    named = lambda found: (found[0].path.name, found[1]) if found else None  # noqa: E731
    return decide(release, None, named(executed), named(reverted), env)
