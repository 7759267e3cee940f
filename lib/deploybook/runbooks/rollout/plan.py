"""The steps of a rollout (plan sections 11 and 13), built from params.

Every command is an argv template from params rendered here, up front, so a bad template
or value fails the dry run as well as the real one; every one runs in the checkout
(`deploybook.systems.workdir`), and one that is not there fails a first step before
anything changes. A step's action is a closure that
`deploybook.runbooks.rollout.cells.execute` runs through the step ledger; building a plan changes
nothing (it only reads the pending migrations, to show them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploybook.core import anchors, paths, render
from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.errors import CommandFailed, GateFailed, MigrationFailed, NotifyFailed
from deploybook.runbooks.migration_dry_run.impact import plan_note as impact_note
from deploybook.runbooks.rollout.gates import resolve_stage
from deploybook.runbooks.rollout.releasenotes import ReleaseNotes
from deploybook.runbooks.smoke import suite as smoke
from deploybook.session.runbook import Runbook, show
from deploybook.systems import notify
from deploybook.systems.commands import CommandResult, render_argv
from deploybook.systems.http import check_health
from deploybook.systems.postgres import db
from deploybook.systems.prisma import apply as prisma_apply
from deploybook.systems.prisma import migrations
from deploybook.systems.workdir import preflight, run_in_checkout

SECTIONS = {"staging": "11", "production": "13"}
VERSIONS_STEP, MIGRATE_STEP = "record running versions", "apply migrations"
COMMANDS_STEP = "commands present in the checkout"
HEALTH_RETRIES = 3


@dataclass
class PlannedStep:
    """One step: what it does (its rendered command), and the call that does it."""

    name: str
    describe: str
    action: Callable[[], Any] | None  # None: skipped, for ``skip``
    section: str
    skip: str = ""


@dataclass
class Plan:
    """The ordered steps of one rollout of one release to one environment."""

    env: str
    release: str
    stage: str
    steps: list[PlannedStep]
    # What the smoke and announcement steps found, for the run's checks table.
    extra_checks: Checks = field(default_factory=Checks)

    def rows(self) -> list[dict[str, str]]:
        return [
            {"step": s.name, "what": s.describe if s.action else f"skip: {s.skip}"}
            for s in self.steps
        ]

    def to_text(self) -> str:
        return render.plan_text(self)

    def _repr_html_(self) -> str:
        return render.plan_html(self)

    def __repr__(self) -> str:
        return render.plan_text(self)


def _show_output(result: CommandResult) -> CommandResult:
    for stream in (result.stdout, result.stderr):
        for line in stream.rstrip().splitlines()[-20:]:
            print(f"    {line}", flush=True)
    return result


class _Builder:
    """Builds the steps of one plan; each action is a closure over the run's facts."""

    def __init__(self, run: Runbook, stage: str, notes: ReleaseNotes | None) -> None:
        self.run, self.params, self.stage, self.notes = run, run.params, stage, notes
        self.spec = run.params.rollout
        self.section = SECTIONS[stage]
        self.values: dict[str, Any] = {"version": run.release, "release": run.release}
        self.values["env"] = run.env
        if run.previous_release:
            self.values["previous_version"] = run.previous_release
        self.timeout = self.spec.command_timeout_s
        self.extra_checks = Checks()  # smoke and announcement checks, added to the run
        self.checkout = run.params.checkout.path
        # (what, template, values, cwd in the checkout): every command, for the preflight
        self.commands: list[tuple[str, list[str], dict[str, Any], str]] = []
        self.problems: list[str] = []

    def step(self, name: str, describe: str, action: Callable[[], Any] | None, skip: str = ""):
        return PlannedStep(name, scrub(describe), action, self.section, skip)

    def invoke(
        self,
        what: str,
        template: list[str],
        values: dict[str, Any],
        *,
        subdir: str = ".",
        timeout_s: float | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run one configured command in the checkout, its output shown as it ends."""
        result = run_in_checkout(
            what,
            template,
            values,
            checkout=self.checkout,
            timeout_s=timeout_s or self.timeout,
            subdir=subdir,
            env=env,
        )
        return _show_output(result)

    def shown(
        self, what: str, template: list[str], values: dict[str, Any], subdir: str = "."
    ) -> str:
        """The rendered command for the plan, noted for the preflight."""
        self.commands.append((what, template, values, subdir))
        return " ".join(render_argv(template, values))

    def command(self, name: str, template: list[str], values: dict[str, Any], **kw: Any):
        shown = self.shown(name, template, values, kw.get("subdir", "."))
        return self.step(name, shown, lambda: self.invoke(name, template, values, **kw))

    def preflight(self) -> PlannedStep | None:
        """A first step that fails, before anything changes, when a command cannot start."""
        self.problems = problems = preflight(self.commands, self.checkout)
        if not problems:
            return None
        message = "\n".join(problems)

        def refuse() -> None:
            raise CommandFailed(message + "\nNothing was changed.")

        return self.step(COMMANDS_STEP, f"{len(problems)} command(s) cannot start", refuse)

    def versions(self) -> PlannedStep:
        targets = ", ".join(f"{s.name} {s.base_url}{s.health_path}" for s in self.params.services)
        production = self.stage == "production"

        def action() -> dict[str, str | None]:
            found = smoke.running_versions(self.params)
            print("    " + ", ".join(f"{k} {v or '?'}" for k, v in found.items()), flush=True)
            unknown = [k for k, v in found.items() if not v]
            if unknown and production:
                raise GateFailed(
                    f"cannot read the running version of {', '.join(unknown)}: the rollback "
                    "needs it; make the health endpoint answer, then rerun"
                )
            return found

        return self.step(VERSIONS_STEP, f"GET health of {targets}", action)

    def builds(self) -> list[PlannedStep]:
        items = self.spec.build
        if not items:
            return [self.step("build and test", "", None, "not configured (params rollout.build)")]
        steps = []
        for item in items:
            steps.append(
                self.command(
                    item.name, item.argv, self.values, subdir=item.cwd, timeout_s=item.timeout_s
                )
            )
        return steps

    def migrate(self) -> PlannedStep:
        params, run = self.params, self.run
        folder = Path(params.checkout.path) / params.checkout.migrations_dir
        raw = list(params.database.raw_sql)
        custom = self.spec.migrate_command
        if custom:
            shown = self.shown(MIGRATE_STEP, custom, self.values)
            describe = f"{shown} (configured instead of the built-in migrate deploy)"
        else:
            describe = f"prisma migrate deploy (built in) from {folder}: {_pending(run, folder)}"
        if raw:
            describe += f"; then raw SQL {', '.join(raw)}"
        describe += impact_note(run.env, run.release)  # what 02 measured it will block

        def action() -> list[str]:
            url = run.database_url()
            before = {r.migration_name for r in migrations.read_applied(url) or [] if r.applied}
            local = migrations.read_migrations(folder)
            if custom:
                self.invoke(MIGRATE_STEP, custom, self.values, env={params.database.url_env: url})
                after = migrations.read_applied(url) or []
                names = [
                    r.migration_name for r in after if r.applied and r.migration_name not in before
                ]
            else:
                logs = lambda text: print(f"    {text}", flush=True)  # noqa: E731
                applied = prisma_apply.apply_pending(
                    url,
                    local,
                    logs,
                    lock_timeout=params.database.lock_timeout,
                    statement_timeout=params.database.statement_timeout,
                )
                names = [m.name for m in applied]
            for item in local.raw(raw):
                _apply_raw(url, item)
                print(f"    applied raw SQL {item.name}", flush=True)
            return names

        return self.step(MIGRATE_STEP, describe, action)

    def deploys(self) -> list[PlannedStep]:
        last = self.spec.deploy_last
        ordered = [s for s in self.params.services if s.name not in last]
        ordered += [s for name in last for s in self.params.services if s.name == name]
        steps = []
        for svc in ordered:
            name = f"deploy {svc.name}"
            if not svc.deploy:
                steps.append(self.step(name, "", None, f"no deploy command for {svc.name}"))
                continue
            values = {**self.values, "service": svc.name}
            planned = self.command(name, svc.deploy, values)
            planned.describe += (
                f"; then GET {svc.base_url}{svc.health_path} reports {self.run.release}"
            )
            planned.action = self._verified(
                planned.action, svc.name, svc.base_url + svc.health_path
            )
            steps.append(planned)
        return steps

    def _verified(self, action: Callable[[], Any], service: str, url: str) -> Callable[[], Any]:
        def run_and_verify() -> Any:
            result = action()
            check = check_health(
                f"{service} runs {self.run.release}",
                url,
                self.section,
                expect_version=self.run.release,
                retries=HEALTH_RETRIES,
            )
            if check.status is Status.FAIL:
                raise GateFailed(
                    f"{service}: the deploy command succeeded but {check.evidence.splitlines()[0]}",
                    [check],
                )
            return result

        return run_and_verify

    def scale(self) -> PlannedStep:
        services = [s for s in self.params.services if s.scale]
        if not services:
            return self.step("scale up", "", None, "no scale commands configured")
        commands = []
        for svc in services:
            values = {**self.values, "service": svc.name, "replicas": svc.warmup_replicas}
            commands.append((f"scale {svc.name}", svc.scale, values))
        shown = "; ".join(self.shown(*c) for c in commands)

        def action() -> list[str]:
            return [self.invoke(*c).summary() for c in commands]

        return self.step("scale up for warm-up", shown, action)

    def flags(self) -> PlannedStep:
        template, names = self.spec.flag_command, self.spec.flags
        if not template or not names:
            return self.step("flip flags", "", None, "not configured (params rollout.flag_command)")
        commands = [(f"flag {flag}", template, {**self.values, "flag": flag}) for flag in names]
        shown = "; ".join(self.shown(*c) for c in commands)

        def action() -> list[str]:
            return [self.invoke(*c).summary() for c in commands]

        return self.step("flip flags", shown, action)

    def smoke(self) -> PlannedStep:
        params, release = self.params, self.run.release

        def action() -> dict[str, Any]:
            checks = smoke.run_suite(params, expect_version=release)
            self.extra_checks.extend(checks)
            if not checks.ok:
                names = ", ".join(c.name for c in checks.failed)
                raise GateFailed(f"smoke tests failed: {names}", checks.failed)
            return {"summary": checks.summary()}

        what = (
            f"{len(params.services)} health checks (version {release}), "
            f"{len(params.smoke)} smoke checks and the ChatMock round trip"
        )
        return self.step("smoke tests", what, action)

    def announce(self, name: str, subject: str, body: Callable[[], str]) -> PlannedStep:
        targets = self.params.notifications
        where = ", ".join(t.kind for t in targets) or "no targets configured"

        def action() -> str:
            anchor = anchors.announcement(paths.outputs_dir(), self.run.env)
            checks = notify.announce(targets, subject, body(), anchor=anchor)
            self.extra_checks.extend(checks)
            if not checks.ok:
                raise NotifyFailed(f"a required announcement failed: {checks.failed[0].evidence}")
            return checks.summary()

        return self.step(name, f"{subject!r} to {where}", action)


def _pending(run: Runbook, folder: Path) -> str:
    """'3 pending: a, b, c' — read-only, for the plan; never fails the plan."""
    try:
        status = migrations.migration_status(migrations.read_migrations(folder), run.database_url())
    except Exception as exc:  # the plan is still worth showing
        return f"pending unknown ({type(exc).__name__}: {scrub(str(exc))[:160]})"
    names = [m.name for m in status.pending]
    return f"{len(names)} pending" + (f": {', '.join(names)}" if names else "")


def _apply_raw(url: str, item: migrations.LocalMigration) -> None:
    """A loose .sql file (not a Prisma migration) in one transaction."""
    import psycopg

    with db.connect(url) as conn:
        try:
            with conn.transaction():
                conn.execute(item.sql().encode())
        except psycopg.Error as exc:
            raise MigrationFailed(
                scrub(f"raw SQL {item.name} failed ({exc.sqlstate}): {exc}; rolled back")
            ) from None


def _start_text(run: Runbook, steps: list[PlannedStep], notes: ReleaseNotes | None) -> str:
    lines = [
        f"{run.env}: rollout of {run.release} starting "
        f"(operator {run.operator}, run {run.run_id or '-'}).",
        "Steps: " + "; ".join(s.name for s in steps if s.action),
    ]
    return "\n".join(lines) + ("\n\n" + notes.markdown if notes else "")


def plan(run: Runbook, stage: str = "", notes: ReleaseNotes | None = None) -> Plan:
    """The ordered steps for ``stage`` (empty: the params role), shown with their commands."""
    stage = resolve_stage(run.params, stage)
    b = _Builder(run, stage, notes)
    if stage == "staging":
        steps = [b.versions(), *b.builds(), b.migrate(), *b.deploys(), b.smoke()]
    else:
        subject = f"[{run.env}] rollout of {run.release} starting"
        done = f"[{run.env}] rollout of {run.release} complete"
        steps = [b.versions()]
        steps.append(b.announce("announce start", subject, lambda: _start_text(run, steps, notes)))
        steps += [b.scale(), b.migrate(), *b.deploys(), b.flags(), b.smoke()]
        steps.append(b.announce("announce completion", done, lambda: _done_text(run)))
    refusal = b.preflight()
    if refusal is not None:
        steps.insert(0, refusal)
        if not run.execute:  # executed, the step itself fails and is recorded
            evidence = "\n".join(b.problems) + "\nA real run would stop here, changing nothing."
            run.record(Check(COMMANDS_STEP, b.section, Status.FAIL, evidence))
    result = Plan(run.env, run.release, stage, steps, b.extra_checks)
    show(result)
    return result


def _done_text(run: Runbook) -> str:
    found = smoke.running_versions(run.params)
    return f"{run.env} now runs " + ", ".join(f"{k} {v}" for k, v in found.items()) + "."
