"""Runbook 05, part two: the rollback's steps and their verification.

Refusals come first and change nothing (`_preflight`); then, under the environment lock,
resumable `StepLedger` steps (one attempt per release, `attempts`: a rerun after a crash
resumes, with one announcement) announce, revert each service and restore the database
(`database`: swap or in place, data loss accounted first). `verify` compares what runs
now with the plan and the snapshot.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.core import anchors, paths, render
from deploybook.core.checks import Check, Checks, Status
from deploybook.core.lock import run_lock
from deploybook.core.render import describe_breach
from deploybook.core.steps import DONE, SKIPPED, StepLedger
from deploybook.errors import CommandFailed, DeploybookError, RestoreRefused, SnapshotCorrupt
from deploybook.runbooks.rollback import attempts
from deploybook.runbooks.rollback.database import restore_database
from deploybook.runbooks.rollback.outcome import Outcome, result, step_check
from deploybook.runbooks.rollback.plan import SECTION, Revert, RollbackPlan
from deploybook.runbooks.smoke import suite as smoke
from deploybook.session import confirm
from deploybook.session import runbook as session
from deploybook.session.approvals import Confirmation
from deploybook.systems import notify
from deploybook.systems.postgres import db
from deploybook.systems.postgres.compare import compare_inventory
from deploybook.systems.postgres.dataloss import DataLoss
from deploybook.systems.postgres.snapshot import verify_snapshot
from deploybook.systems.postgres.tools import pg_tools
from deploybook.systems.workdir import preflight, run_in_checkout


@dataclass
class Recovery:
    """A rollback in progress: its plan, step ledger, what was reverted and verified."""

    run: session.Runbook
    plan: RollbackPlan
    ledger: StepLedger
    checks: Checks = field(default_factory=Checks)
    reverted: list[dict[str, Any]] = field(default_factory=list)
    restored: bool = False
    safety_snapshot: str | None = None
    # How the database was restored (swap or in_place), why, and what it discarded.
    restore_mode: str = ""
    restore_why: str = ""
    pre_rollback_db: str | None = None
    swap_s: float | None = None
    data_loss: DataLoss | None = None
    attempt: str = ""
    removed_migrations: list[str] = field(default_factory=list)
    verify_started: datetime | None = None
    verified_at: datetime | None = None
    verify_ended: datetime | None = None
    incident_report: Path | None = None

    @property
    def started_at(self) -> datetime:
        """The incident clock starts when the rollback runbook starts."""
        return self.run.started_at

    @property
    def recovery_s(self) -> float | None:
        if self.verified_at is None:
            return None
        return round((self.verified_at - self.started_at).total_seconds(), 3)

    def timeline_rows(self) -> list[dict[str, Any]]:
        """Every step with its times (the ledger's, then verification), for report and plot."""
        rows = [
            s
            for s in self.ledger.summary()
            if s["status"] in (DONE, SKIPPED, "failed") and not attempts.is_bookkeeping(s["name"])
        ]
        if self.verify_started:
            ended = self.verified_at or self.verify_ended or datetime.now(UTC)
            rows.append(
                {
                    "name": "verify",
                    "status": "done" if self.verified_at else "failed",
                    "started_at": _stamp(self.verify_started),
                    "ended_at": _stamp(ended),
                    "duration_s": (ended - self.verify_started).total_seconds(),
                    "detail": "" if self.verified_at else "not verified: see the checks",
                }
            )
        return sorted(rows, key=lambda row: row.get("started_at") or "")

    def to_text(self) -> str:
        return render.recovery_text(self)

    __repr__ = to_text

    def _repr_html_(self) -> str:
        return render.recovery_html(self)


# -- helpers ---------------------------------------------------------------------------------
def _stamp(moment: datetime) -> str:
    """The ledger's time format (UTC, milliseconds, Z), so a timeline sorts as one."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_key(run: session.Runbook) -> str:
    return run.run_id or f"{run.started_at:%Y%m%dT%H%M%SZ}"


def _ledger(run: session.Runbook) -> tuple[StepLedger, str]:
    """The rollback's step ledger at this release's attempt (`attempts`), and why."""
    path = attempts.ledger_path(run.record_dir, run.env, run.release)
    key, why = attempts.attempt_key(path, run.release, run.run_id)
    return StepLedger(path, key), why


def announce_step(
    recovery: Recovery, name: str, targets: list[Any], subject: str, text: str
) -> Checks:
    """An announcement as a step: sent once per run, its checks kept for a resumed run."""
    run = recovery.run

    def send() -> Outcome:
        anchor = anchors.announcement(paths.outputs_dir(), run.env)
        checks = notify.announce(targets, subject, text, section=SECTION, anchor=anchor)
        return Outcome(checks.to_records(), checks.summary())

    step = recovery.ledger.run(
        name, send, execute=run.execute, describe=f"{subject} → {len(targets)} target(s)"
    )
    if step.status not in (DONE, SKIPPED) or not result(step):
        return run.record(step_check(name, step, step.detail, critical=False))
    checks = [Check.from_dict(c) for c in result(step)]
    for check in checks:  # "announce via webhook …" -> "announce rollback via webhook …"
        check.name = check.name.replace("announce via", f"{name} via", 1)
    return run.record(checks)


# -- the steps -------------------------------------------------------------------------------
def _preflight(run: session.Runbook, plan: RollbackPlan, confirmation: Confirmation | None) -> None:
    """Everything that can refuse the rollback, checked before anything changes."""
    _commands_present(run, plan)
    url = run.database_url()
    tools = pg_tools(run.pg_bin_dir, db.server_version(url)[0])
    name = f"snapshot {Path(plan.snapshot.path).name} intact"
    try:
        entries = verify_snapshot(plan.snapshot, plan.snapshot.sha256, tools)
    except SnapshotCorrupt as exc:
        run.record(Check(name, SECTION, Status.FAIL, f"{exc} — nothing was changed"))
        raise SnapshotCorrupt(f"{exc} — nothing was changed") from None
    run.record(
        Check(
            name,
            SECTION,
            Status.PASS,
            f"sha256 matches {plan.snapshot.sha256[:16]}…, {entries} archive entries",
        )
    )
    # NOTE: a Confirmation is falsy until confirmed: compare with None, not truthiness.
    asked = confirmation is not None
    explained = confirmation.explain() if asked else "no confirmation was asked for"
    confirmed = asked and confirmation.confirmed
    if not run.execute:
        status = Status.PASS if confirmed else Status.SKIP
        run.record(Check("restore confirmed", SECTION, status, f"dry run; {explained}", False))
        return
    if not confirmed:
        message = (
            f"restore of {plan.database_at} refused: {explained} (confirm_restore="
            f"'{plan.database}'); nothing was changed — no announcement, no service reverted"
        )
        run.record(Check("restore confirmed", SECTION, Status.FAIL, message))
        raise RestoreRefused(message)
    run.record(Check("restore confirmed", SECTION, Status.PASS, explained))


def _commands_present(run: session.Runbook, plan: RollbackPlan) -> None:
    """Every revert command can start in the checkout, or the rollback stops here."""
    name = "revert commands present in the checkout"
    problems = preflight(
        [(f"revert {r.service}", r.argv, None, ".") for r in plan.reverts],
        run.params.checkout.path,
    )
    if problems:
        message = "\n".join(problems) + "\nNothing was changed."
        run.record(Check(name, SECTION, Status.FAIL, message))
        raise CommandFailed(message)


def _revert(recovery: Recovery, revert: Revert) -> bool:
    run, name = recovery.run, f"revert {revert.service}"
    describe = f"{revert.service} {revert.current or '?'} → {revert.target}: `{revert.command}`"
    key = f"{run.env}:{recovery.ledger.run_key}:{name}"
    if confirm.waits(run.execute) and (confirm.given(key) or not recovery.ledger.is_done(name)):
        # In JupyterLab each revert waits for the lead's Confirm (WaitingForLead stops the cell).
        reverts = recovery.plan.reverts
        number = reverts.index(revert) + 1
        run.record(
            confirm.require(key, number, len(reverts), name, describe, run.operator, SECTION)
        )
    try:
        step = recovery.ledger.run(
            name,
            lambda: run_in_checkout(
                name,
                revert.argv,
                None,
                checkout=run.params.checkout.path,
                timeout_s=run.params.rollout.command_timeout_s,
            ),
            execute=run.execute,
            describe=describe,
        )
    except DeploybookError as exc:  # CommandFailed, or its executable is missing
        recovery.checks.extend(run.record(Check(name, SECTION, Status.FAIL, str(exc))))
        return False
    evidence = f"{revert.current or '?'} → {revert.target}: {step.detail}"
    recovery.checks.extend(run.record(step_check(name, step, evidence)))
    if step.status in (DONE, SKIPPED):
        recovery.reverted.append(
            {"service": revert.service, "from": revert.current, "to": revert.target}
        )
    return True


def revert_and_restore(
    run: session.Runbook, plan: RollbackPlan, confirmation: Confirmation | None
) -> Recovery:
    """Announce, revert every service, take a safety snapshot and restore the database.

    Refusals (snapshot fails its SHA-256, restore not confirmed, lock held) raise before
    anything changes. A failing revert is recorded and stops before the restore, so the
    verification and the incident report still run and say what happened.
    """
    _preflight(run, plan, confirmation)
    with run_lock(run) if run.execute else nullcontext():
        ledger, why = _ledger(run)  # under the lock: no other run appends meanwhile
        recovery = Recovery(run, plan, ledger, attempt=why)
        print(f"rollback of {run.release} on {run.env}: {why}", flush=True)
        if run.execute and run.run_id:
            ledger.run(
                f"{attempts.JOINED}{run.run_id}",
                lambda: run.run_id,
                execute=True,
                describe="this run works on this attempt",
            )
        targets = list(run.params.notifications)
        previous = plan.previous_release or "their previous versions"
        text = (
            f"Rolling back {run.release} on {run.env} to {previous} (operator {run.operator}, "
            f"run {run_key(run)}).\nTrigger: {describe_breach(plan.breach)}\n"
            f"Database {plan.database} will be restored from {Path(plan.snapshot.path).name}."
        )
        recovery.checks.extend(
            announce_step(
                recovery,
                "announce rollback",
                targets,
                f"Rollback started: {run.env} {run.release} → {previous}",
                text,
            )
        )
        reverted = [_revert(recovery, r) for r in plan.reverts]
        if all(reverted):
            restore_database(recovery)
            if recovery.restored and run.execute:
                ledger.run(
                    attempts.COMPLETE_STEP,
                    lambda: "reverted and restored",
                    execute=True,
                    describe="attempt complete",
                )
        else:
            recovery.checks.extend(
                run.record(
                    Check(
                        "restore database",
                        SECTION,
                        Status.FAIL,
                        "not attempted: a service failed to revert (see above)",
                    )
                )
            )
    return recovery


# -- verification ----------------------------------------------------------------------------
def _versions_check(recovery: Recovery, suite: Checks) -> Check:
    health = {c.name: c for c in suite}
    wrong, seen = [], []
    for r in recovery.plan.reverts:
        check = health.get(f"{r.service} health")
        version = (check.data or {}).get("version") if check else None
        seen.append(f"{r.service} {version or 'unreachable'}")
        if version != r.target:
            wrong.append(f"{r.service} runs {version or 'nothing reachable'}, expected {r.target}")
    status = Status.FAIL if wrong else Status.PASS
    return Check(
        "every service at its previous version",
        SECTION,
        status,
        "; ".join(wrong) if wrong else ", ".join(seen),
    )


def verify(run: session.Runbook, recovery: Recovery) -> Checks:
    """Health and smoke at the previous version, and the database equal to the snapshot."""
    if not run.execute:
        return run.record(
            Check("rollback verified", SECTION, Status.SKIP, "dry run: nothing changed", False)
        )
    recovery.verify_started = datetime.now(UTC)
    plan = recovery.plan
    suite = smoke.run_suite(run.params, expect_version=plan.previous_release)
    checks = Checks([*suite, _versions_check(recovery, suite)])
    inventory = plan.snapshot.inventory
    if not inventory:
        checks.append(
            Check(
                "database equals the snapshot",
                SECTION,
                Status.FAIL,
                f"snapshot {plan.snapshot.path} has no recorded inventory to compare with",
            )
        )
    else:
        try:
            checks.extend(
                compare_inventory(inventory, db.inventory(run.database_url()), "snapshot as dumped")
            )
        except DeploybookError as exc:
            checks.append(Check("database equals the snapshot", SECTION, Status.FAIL, f"{exc}"))
    recovery.verify_ended = datetime.now(UTC)
    if checks.ok:
        recovery.verified_at = recovery.verify_ended
    recovery.checks.extend(checks)
    return run.record(checks)
