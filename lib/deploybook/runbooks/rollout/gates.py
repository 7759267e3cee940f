"""What must hold before runbook 03 changes anything (plan sections 5, 7, 8, 18).

Production needs a passing, executed staging rollout of the same release (and the same
artifact SHAs when both 01 records hold them), every sign-off by someone other than the
operator, the snapshot 02 took (the rollback restores it) within
``database.snapshot_max_age`` and after the freeze began, the checkout at the release tag
and, when params schedule one, the deployment window. Every record read is verified
against the ledger first (`records.find`); an edited one fails its gate, naming it. Each
is a `Check`; with ``execute=False`` a failing gate is shown as a warning ("execute=True
would refuse").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deploybook.config import Params
from deploybook.core import paths
from deploybook.core.checks import Check, Checks, Status
from deploybook.errors import ConfigError, DeploybookError
from deploybook.runbooks.preconditions.release import window_start
from deploybook.session import environment, records, scraps, signing_gate
from deploybook.session.approvals import SignOffs, check_signoffs, collect_signoffs, operator_label
from deploybook.session.runbook import Runbook, show
from deploybook.session.signing_gate import SignedApprovals
from deploybook.systems import git as repo

RUNBOOK = "03-rollout"
STAGES = ("staging", "production")


def resolve_stage(params: Params, stage: str = "") -> str:
    """``staging`` or ``production``: empty means the params role; production stays production."""
    stage = (stage or "").strip().lower() or params.environment.role
    if stage not in STAGES:
        raise ConfigError(f"stage {stage!r} is not one of {', '.join(STAGES)} (or empty)")
    if stage == "staging" and params.environment.is_production:
        raise ConfigError(
            f"{params.source}: environment {params.environment.name} is production; it only "
            "runs the production rollout (with its gates), never stage='staging'"
        )
    return stage


@dataclass
class Gates:
    """The gate checks of one run, and the snapshot found for the rollback."""

    stage: str
    checks: Checks
    snapshot: dict[str, Any] | None = None
    staging_record: str | None = None
    signoffs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.checks.ok

    def _repr_html_(self) -> str:
        return self.checks._repr_html_()

    def to_text(self) -> str:
        return self.checks.to_text()

    def __repr__(self) -> str:
        return self.to_text()


def _artifact_shas(artifacts: dict[str, Any]) -> dict[str, str]:
    comps = artifacts.get("components") or artifacts.get("services") or {}
    shas = {k: str(v.get("sha") if isinstance(v, dict) else v) for k, v in comps.items()}
    if commit := artifacts.get("commit") or artifacts.get("tag_sha"):
        shas["(commit)"] = str(commit)
    return shas


def judge_artifacts(staging: dict[str, Any] | None, here: dict[str, Any] | None) -> Check:
    """Production ships what staging tested: both 01 records' artifact SHAs agree."""
    name = "same artifact SHAs as staging"
    if not staging or not here:
        missing = "staging's" if not staging else "this environment's"
        return Check(
            name,
            "8",
            Status.WARN,
            f"cannot compare: {missing} passing 01-preconditions record holds no `artifacts`",
            critical=False,
        )
    a, b = _artifact_shas(staging), _artifact_shas(here)
    diff = [
        f"{k}: staging {a.get(k)} ≠ here {b.get(k)}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]
    if diff:
        return Check(
            name, "8", Status.FAIL, "artifacts differ from staging:\n" + "\n".join(diff), data=diff
        )
    return Check(name, "8", Status.PASS, f"{len(a)} artifact SHAs match staging's", data=a)


def _artifacts(params: Params, env: str, release: str) -> Check:
    """Both environments' passing 01 records (verified) compared by `judge_artifacts`."""
    staging_env = params.environment.staging_env or ""
    found = []
    for where in (staging_env, env):
        try:
            rec = (
                records.find(
                    where, release, "01-preconditions", passed=True, having=scraps.Artifacts
                )
                if where
                else None
            )
        except records.RecordUntrusted as exc:
            return Check("same artifact SHAs as staging", "8", Status.FAIL, str(exc))
        found.append(rec.read(scraps.Artifacts).data() if rec else None)
    return judge_artifacts(*found)


def _staging_record(params: Params, release: str) -> tuple[Check, str | None]:
    name = "staging rollout passed for this release"
    staging_env = params.environment.staging_env
    if not staging_env:
        return Check(name, "13", Status.FAIL, "params environment.staging_env is not set"), None
    try:
        record = records.find(
            staging_env, release, RUNBOOK, passed=True, having=scraps.PreviousVersions
        )
    except records.RecordUntrusted as exc:
        return Check(name, "13", Status.FAIL, str(exc), data=exc.record), None
    rollout = record.read(scraps.RolloutOutcome) if record else None
    if record is None or rollout is None or not rollout.completed:
        return Check(
            name,
            "13",
            Status.FAIL,
            f"no passing, executed 03-rollout record of {release} in {staging_env}: roll out "
            f"to staging first (deploybook run 03 --env {staging_env} --release {release} "
            "-p execute true)",
        ), None
    rel = str(record.path.relative_to(paths.outputs_dir()))
    return Check(
        name, "13", Status.PASS, f"{rel} ({record.entry.get('ended_at', '?')})", data=rel
    ), rel


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def judge_snapshot_age(
    created_at: str, max_age: timedelta, freeze_start: datetime, now: datetime
) -> str | None:
    """Why a production snapshot is too old (None when it is fresh): it must be younger
    than ``database.snapshot_max_age`` and taken after the freeze began (plan section 5)."""
    try:
        taken = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return f"its time {created_at!r} is not an ISO timestamp: cannot tell its age"
    taken = taken if taken.tzinfo else taken.replace(tzinfo=UTC)
    age = (now - taken).total_seconds()
    limit = max_age.total_seconds()
    if age > limit:
        return (
            f"taken {taken:%Y-%m-%d %H:%M} UTC, {_age(age)} ago: older than "
            f"database.snapshot_max_age ({_age(limit)})"
        )
    if taken < freeze_start:
        return (
            f"taken {taken:%Y-%m-%d %H:%M} UTC, before the freeze began "
            f"({freeze_start:%Y-%m-%d %H:%M} UTC)"
        )
    return None


def _snapshot(
    params: Params, env: str, release: str, production: bool
) -> tuple[Check, dict[str, Any] | None]:
    name = "snapshot from 02-migration-dry-run"
    fail = Status.FAIL if production else Status.WARN
    try:
        record = records.find(
            env, release, "02-migration-dry-run", passed=True, having=scraps.SnapshotFacts
        )
    except records.RecordUntrusted as exc:  # a tampered record is refused in every env
        return Check(name, "7", Status.FAIL, str(exc), data=exc.record), None
    if record is None:
        return Check(
            name,
            "7",
            fail,
            f"no passing 02-migration-dry-run record of {release} in {env} holds a snapshot: "
            f"run 02 first (deploybook run 02 --env {env} --release {release}); the rollback "
            "restores that snapshot",
            critical=production,
        ), None
    snap = record.read(scraps.SnapshotFacts)
    path = Path(snap.path)
    if not path.is_absolute():
        path = paths.project_root() / path
    if not path.exists():
        return Check(
            name,
            "7",
            fail,
            f"the snapshot {path} recorded by 02 is gone: run 02 again",
            critical=production,
        ), None
    rel = str(record.path.relative_to(paths.outputs_dir()))
    if production:
        start, _ = window_start(params)
        freeze = start - timedelta(hours=params.schedule.freeze_hours)
        max_age = params.database.snapshot_max_age
        if why := judge_snapshot_age(snap.created_at, max_age, freeze, datetime.now(UTC)):
            return Check(
                name,
                "7",
                Status.FAIL,
                f"the snapshot {path.name} in {rel} is {why}: take a fresh one "
                f"(deploybook run 02-migration-dry-run --env {env} --release {release})",
            ), None
    return Check(
        name,
        "7",
        Status.PASS,
        f"{path.name} ({snap.size:,} bytes, sha256 {snap.sha256[:12]}…) "
        f"taken {snap.created_at or '?'}; {rel} verified against the ledger",
        critical=production,
    ), {**snap.data(), "record": rel}


def _checkout_at_release(params: Params, release: str, production: bool) -> Check:
    """Migrations are read from the working tree: it must be the release tag, unmodified."""
    name = "checkout at the release tag"
    fail = Status.FAIL if production else Status.WARN
    checkout = Path(params.checkout.path)
    try:
        tag = repo.commit_sha(checkout, release)
        head = repo.git(checkout, "rev-parse", "HEAD").stdout.strip()
        dirty = repo.git(
            checkout, "status", "--porcelain", "--", params.checkout.migrations_dir
        ).stdout.strip()
    except DeploybookError as exc:
        return Check(name, "8", fail, f"{type(exc).__name__}: {exc}", critical=production)
    if head != tag:
        return Check(
            name,
            "8",
            fail,
            f"HEAD {head[:10]} is not {release} ({tag[:10]}): check out the tag",
            critical=production,
        )
    if dirty:
        return Check(
            name,
            "8",
            fail,
            f"{params.checkout.migrations_dir} has local changes:\n{dirty}",
            critical=production,
        )
    return Check(
        name,
        "8",
        Status.PASS,
        f"HEAD is {release} ({tag[:10]}), migrations unmodified",
        critical=production,
    )


def _window(params: Params, now: datetime | None = None) -> Check:
    name = "inside the deployment window"
    start = params.schedule.window_start
    if start is None:
        return Check(name, "5", Status.SKIP, "schedule.window_start is not set", critical=False)
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = start + timedelta(minutes=params.schedule.window_minutes)
    now = now or datetime.now(UTC)
    span = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
    if start <= now <= end:
        return Check(name, "5", Status.PASS, f"now {now:%H:%M} UTC is inside {span}")
    return Check(name, "5", Status.FAIL, f"now {now:%Y-%m-%d %H:%M} UTC is outside {span}")


def _soften(checks: Checks) -> Checks:
    """A dry run shows what would block an execute run without failing itself."""
    out = Checks()
    for c in checks:
        if c.blocks:
            c = Check(
                c.name,
                c.section,
                Status.WARN,
                f"execute=True would refuse: {c.evidence}",
                False,
                c.duration_s,
                c.data,
            )
        out.append(c)
    return out


def signoffs(run: Runbook, approvals_given: dict[str, Any] | None) -> SignOffs | SignedApprovals:
    """The sign-off state: signed approval files (params ``approvals.method: signed``), or
    the free-text names of the ``approvals`` parameter / the form (a sandbox only)."""
    if run.params.approvals.method == "signed":
        return signing_gate.collect(run.params, run.env, run.release, operator_label(run.operator))
    return collect_signoffs(run.params.signoff_roles, approvals_given, run.operator)


def _signoff_checks(
    run: Runbook, given: SignOffs | SignedApprovals, production: bool
) -> tuple[Checks, list[dict[str, Any]]]:
    """The sign-off checks; signed approvals are read again, as they stand at the gate."""
    params = run.params
    if isinstance(given, SignedApprovals):
        state = signing_gate.collect(params, run.env, run.release, operator_label(run.operator))
        return state.checks(require_all=production, require_distinct=production), state.to_records()
    checks = check_signoffs(
        given,
        params.signoff_roles,
        run.operator,
        require_all=production,
        require_distinct_approver=production,
    )
    if not environment.free_text_signoffs_allowed(params):
        checks.append(
            Check(
                "sign-off method",
                "18",
                Status.FAIL if production else Status.WARN,
                f"{params.source}: approvals.method 'names' (typed names) is only for a "
                "sandbox; use 'signed' with approvals.allowed_signers",
                critical=production,
            )
        )
    return checks, given.to_records()


def check_gates(run: Runbook, signoffs: SignOffs | SignedApprovals, stage: str = "") -> Gates:
    """Every gate of this stage as checks; with ``execute=True`` a failed one raises
    GateFailed (after the record holds the checks), before any step has run."""
    params = run.params
    stage = resolve_stage(params, stage)
    production = stage == "production"
    required = run.params.approvals.required
    signoff_checks, signoff_records = _signoff_checks(
        run, signoffs, production if required is None else required
    )
    checks = Checks(signoff_checks)
    staging_record = None
    if production:
        check, staging_record = _staging_record(params, run.release)
        checks.append(check)
        checks.append(_artifacts(params, run.env, run.release))
        checks.append(_window(params))
    snap_check, snap = _snapshot(params, run.env, run.release, production)
    checks += [snap_check, _checkout_at_release(params, run.release, production)]
    if not run.execute:
        checks = _soften(checks)
    gates = Gates(stage, checks, snap, staging_record, signoff_records)
    run.record(checks)
    show(gates)
    scraps.SignOffRecords(gates.signoffs).glue()
    if run.execute and not gates.ok:
        scraps.RolloutOutcome(
            stage=stage,
            status="refused",
            execute=True,
            env=run.env,
            release=run.release,
            error="refused by the gates: " + "; ".join(c.name for c in checks.failed),
            steps=[],
        ).glue()
        run.finish()  # glues the checks and raises GateFailed naming every failed gate
    return gates
