"""Runbook 03: the staging and production rollouts (plan sections 11 and 13).

A rollout is a `Plan`: ordered steps built from params, every command rendered up front
(so a bad template fails the dry run too). `execute` runs the plan under the environment
lock through a `StepLedger`, so a rerun resumes after the last finished step and never
repeats a finished mutation. With ``execute=False`` nothing that changes a system is
called: the plan is printed. The gates that must pass first (sign-offs, the staging
record, the snapshot from 02) are in `deploybook.runbooks.rollout.gates`; the release notes in
`deploybook.runbooks.rollout.releasenotes`.

Glued for later runbooks (05-rollback reads them), as `deploybook.session.scraps` models:
the previous versions, the snapshot, the applied migrations and the rollout's outcome; the
gates glue the sign-offs. Which attempt a rerun resumes is `attempts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from deploybook.config import Params
from deploybook.core import anchors, paths, render
from deploybook.core.checks import Check, Status
from deploybook.core.lock import run_lock
from deploybook.core.secrets import scrub
from deploybook.core.steps import DONE, FAILED, SKIPPED, Step, StepLedger
from deploybook.errors import ConfigError, GateFailed, MigrationFailed
from deploybook.runbooks.rollout.attempts import (
    COMPLETE_STEP,
    attempt_key,
    keep_earlier,
    ledger_path,
    when,
)
from deploybook.runbooks.rollout.gates import Gates, check_gates
from deploybook.runbooks.rollout.gates import signoffs as gate_signoffs
from deploybook.runbooks.rollout.plan import (
    MIGRATE_STEP,
    SECTIONS,
    VERSIONS_STEP,
    Plan,
    PlannedStep,
    plan,
)
from deploybook.runbooks.rollout.releasenotes import ReleaseNotes
from deploybook.runbooks.rollout.releasenotes import release_notes as _build_notes
from deploybook.runbooks.smoke.suite import running_versions
from deploybook.session import confirm, scraps
from deploybook.session.runbook import Runbook, show
from deploybook.systems import notify

__all__ = [
    "Gates",
    "Plan",
    "PlannedStep",
    "RolloutResult",
    "check_gates",
    "execute",
    "ledger_path",
    "plan",
    "release_notes",
    "rollout",
    "running_versions",
    "signoffs",
    "timeline",
]

RUNBOOK = "03-rollout"


# --- executing ------------------------------------------------------------------------------


@dataclass
class RolloutResult:
    """How a rollout went: each step, what was running before, what was applied."""

    env: str
    release: str
    stage: str
    execute: bool
    status: str  # planned | completed | failed
    steps: list[Step] = field(default_factory=list)
    run_key: str = ""
    attempt: str = ""
    ledger: str = ""
    previous_versions: dict[str, Any] | None = None
    applied_migrations: list[str] = field(default_factory=list)
    snapshot: dict[str, Any] | None = None
    error: str | None = None

    def outcome(self) -> scraps.RolloutOutcome:
        """The ``rollout`` scrap: how this rollout went, for the production gate and 05."""
        return scraps.RolloutOutcome(
            stage=self.stage,
            status=self.status,
            execute=self.execute,
            env=self.env,
            release=self.release,
            run_key=self.run_key,
            attempt=self.attempt,
            ledger=self.ledger,
            error=self.error,
            steps=[s.as_dict() for s in self.steps],
        )

    def to_text(self) -> str:
        return render.rollout_text(self)

    def _repr_html_(self) -> str:
        return render.rollout_html(self)

    def __repr__(self) -> str:
        return render.rollout_text(self)

    def plot(self, params: Params | None = None):
        """The steps on the plan's timeline (section 5): deployment and rollback windows."""
        from deploybook.core.plots import plot_schedule
        from deploybook.runbooks.preconditions.release import window_start

        rows = [
            {
                "name": s.name,
                "start": when(s.started_at),
                "end": when(s.ended_at),
                "status": s.status,
            }
            for s in self.steps
            if s.started_at
        ]
        first = min((r["start"] for r in rows), default=datetime.now(UTC))
        start, sched = first, None
        if params is not None:
            sched = params.schedule
            configured, is_set = window_start(params)
            start = configured if is_set else first
        return plot_schedule(
            rows,
            start,
            deployment_window_min=sched.window_minutes if sched else 60,
            rollback_window_min=sched.rollback_window_minutes if sched else 60,
            freeze_h=sched.freeze_hours if sched else 24,
            title=f"{self.stage} rollout of {self.release} to {self.env}",
        )


def _evidence(step: Step) -> str:
    """What a step did, readably: versions as 'api v1.3.0, …', migrations as names."""
    value = step.value
    if step.status not in (DONE, SKIPPED) or step.name not in (VERSIONS_STEP, MIGRATE_STEP):
        return step.detail
    if isinstance(value, dict) and value:
        shown = ", ".join(f"{k} {v}" for k, v in value.items())
    elif isinstance(value, list):
        shown = f"{len(value)}: {', '.join(map(str, value))}" if value else "none"
    else:
        return step.detail
    return shown if step.status == DONE else f"{step.detail} — {shown}"


def _step_check(step: Step, section: str) -> Check:
    status = {DONE: Status.PASS, FAILED: Status.FAIL}.get(step.status, Status.SKIP)
    detail = _evidence(step)
    if step.status == SKIPPED and detail.startswith("already done"):
        status, detail = Status.PASS, f"{detail} (resumed: not repeated)"
    return Check(f"step: {step.name}", section, status, detail, True, step.duration_s or 0.0)


def execute(
    run: Runbook, the_plan: Plan, gates: Gates | None, *, resume: bool = True
) -> RolloutResult:
    """Run the plan (``run.execute``) under the lock and the step ledger, or print it."""
    stage = the_plan.stage
    if gates is not None and gates.stage != stage:
        raise ConfigError(f"the gates were checked for {gates.stage}, the plan is for {stage}")
    path = ledger_path(run)
    base = f"{run.release}:{stage}"
    result = RolloutResult(run.env, run.release, stage, run.execute, "planned", ledger=str(path))
    if not run.execute:
        key, why = attempt_key(path, base, resume=resume, env=run.env, release=run.release)
        result.run_key, result.attempt = key, f"dry run; a real run would be: {why}"
        ledger = StepLedger(path, key)
        print(f"DRY RUN of the {stage} rollout ({result.attempt}); nothing is changed", flush=True)
        for s in the_plan.steps:
            result.steps.append(_planned(ledger, s))
        run.record(
            Check(
                f"{stage} rollout plan",
                SECTIONS[stage],
                Status.PASS,
                f"{len(the_plan.steps)} steps planned; execute=False, so nothing was changed",
                critical=False,
            )
        )
        result.outcome().glue()
        return result
    if gates is None or not gates.ok:
        raise GateFailed(
            "refusing to execute: the gates have not passed (call rollout.check_gates first)",
            list(gates.checks.failed) if gates else [],
        )
    result.snapshot = gates.snapshot
    with run_lock(run):  # LockHeld here: nothing has run and nothing is glued
        key, why = attempt_key(path, base, resume=resume, env=run.env, release=run.release)
        result.run_key, result.attempt = key, why
        print(f"{stage} rollout of {run.release} to {run.env}: {why}", flush=True)
        ledger = StepLedger(path, key)
        try:
            _run_steps(run, the_plan, ledger, result)
            if result.status != "failed":
                ledger.run(
                    COMPLETE_STEP, lambda: "all steps done", execute=True, describe="complete"
                )
                result.status = "completed"
        except BaseException:
            result.status = "interrupted"
            raise
        finally:
            run.record(the_plan.extra_checks)
            _glue_result(result)
    if result.status == "failed" and stage == "production":
        _announce_failure(run, result)
    return result


def _planned(ledger: StepLedger, s: PlannedStep) -> Step:
    if s.action is None:
        print(f"… {s.name}: skip: {s.skip}", flush=True)
        return Step(s.name, SKIPPED, s.describe, detail=f"skip: {s.skip}")
    return ledger.run(s.name, lambda: None, execute=False, describe=s.describe)


def _run_steps(run: Runbook, the_plan: Plan, ledger: StepLedger, result: RolloutResult) -> None:
    waits = confirm.waits(run.execute)
    for number, s in enumerate(the_plan.steps, 1):
        key = f"{run.env}:{result.run_key}:{s.name}"
        if waits and s.action is not None and (confirm.given(key) or not ledger.is_done(s.name)):
            # Finished steps are not asked again; their confirmation stays in the table.
            total = len(the_plan.steps)
            run.record(
                confirm.require(key, number, total, s.name, s.describe, run.operator, s.section)
            )
        if s.action is None:
            print(f"– {s.name}: skip: {s.skip}", flush=True)
            step = Step(s.name, SKIPPED, s.describe, detail=f"skip: {s.skip}")
            result.steps.append(step)
            run.record(Check(f"step: {s.name}", s.section, Status.SKIP, step.detail, False))
            continue
        try:
            step = ledger.run(s.name, s.action, execute=True, describe=s.describe)
        except Exception as exc:
            step = next((x for x in ledger.steps if x.name == s.name), None)
            step = step or Step(s.name, FAILED, s.describe, detail=f"{type(exc).__name__}: {exc}")
            result.steps.append(step)
            result.status = "failed"
            result.error = scrub(f"step {s.name!r} failed: {type(exc).__name__}: {exc}")
            check = _step_check(step, s.section)
            if isinstance(exc, MigrationFailed):
                check.data = scrub(
                    {
                        "migration": getattr(exc, "migration", None),
                        "logs": getattr(exc, "logs", None),
                    }
                )
            run.record(check)
            return
        if step.status == DONE:
            confirm.carried_out(key, step)
        elif step.status == SKIPPED and (done_here := confirm.carried_out(key)) is not None:
            # Done earlier in this walkthrough (confirmed, then the cell ran again): recorded
            # as it was done, with its duration, not as a resumed skip.
            step = done_here
        result.steps.append(step)
        run.record(_step_check(step, s.section))
        if s.name == VERSIONS_STEP:
            result.previous_versions = keep_earlier(step.value, ledger, run.release)
        elif s.name == MIGRATE_STEP:
            result.applied_migrations = list(step.value or [])


def _glue_result(result: RolloutResult) -> None:
    if result.previous_versions is not None:
        scraps.PreviousVersions(result.previous_versions).glue()
    if result.snapshot is not None:
        scraps.SnapshotFacts.model_validate(result.snapshot).glue()
    scraps.AppliedMigrations(result.applied_migrations).glue()
    result.outcome().glue()


def _announce_failure(run: Runbook, result: RolloutResult) -> None:
    subject = f"[{run.env}] rollout of {run.release} FAILED"
    text = f"{result.error}\nThe run stopped there; see the record. Consider 05-rollback."
    anchor = anchors.announcement(paths.outputs_dir(), run.env)
    run.record(notify.announce(run.params.notifications, subject, text, anchor=anchor))


# --- the runbook's other cells -----------------------------------------------------------------


def signoffs(run: Runbook, approvals_given: dict[str, Any] | None) -> Any:
    """Signed approval files (which roles are signed, by whom, for what, missing or void),
    or on a sandbox the ``approvals`` parameter (headless) / the form (JupyterLab)."""
    collected = gate_signoffs(run, approvals_given)
    show(collected)
    return collected


def release_notes(run: Runbook) -> ReleaseNotes:
    """Build the release notes, write them beside the record and show them."""
    guide = run.params.rollout.release_notes_guide
    notes = _build_notes(run.params, run.release, run.previous_release, guide)
    path = notes.write(run.record_dir)
    show(notes)
    print(f"written to {path}")
    return notes


def timeline(run: Runbook, result: RolloutResult) -> Any:
    """The rollout's steps on the plan's timeline: deployment and rollback windows."""
    return result.plot(run.params)


def rollout(
    run: Runbook,
    approvals_given: dict[str, Any] | None = None,
    stage: str = "",
    *,
    resume: bool = True,
) -> RolloutResult:
    """The whole runbook in one call (tests, CLI): sign-offs, gates, notes, plan, execute."""
    given = signoffs(run, approvals_given)
    gates = check_gates(run, given, stage)
    notes = release_notes(run)
    return execute(run, plan(run, gates.stage, notes), gates, resume=resume)
