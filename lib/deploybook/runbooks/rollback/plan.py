"""Runbook 05, part one: what a rollback will do, read from the earlier records.

`prefill` takes each fact from the latest 03-rollout record of the environment and release
(previous version of each service, the snapshot with its SHA-256, the migrations the
rollout applied) and the latest 04-smoke record holding a breach (the trigger). Each
record, and the 02 record that took the snapshot, is verified against the ledger first: an
edited one refuses the rollback (RestoreRefused naming it) before anything changes. A
parameter overrides each fact; a fact nobody can supply is a `ConfigError` that says
which parameter to pass (what the restore overwrites, and its confirmation, are in
`deploybook.runbooks.rollback.confirm`). Nothing here changes a system.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploybook.config import ServiceSpec, validate_release
from deploybook.core import paths, render
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, RestoreRefused
from deploybook.runbooks.smoke.suite import running_versions
from deploybook.session import records, scraps
from deploybook.session import runbook as session
from deploybook.systems.commands import render_argv
from deploybook.systems.postgres import db
from deploybook.systems.postgres.snapshot import Snapshot, load_snapshot

SECTION = "16"
OVERRIDES = ("snapshot", "previous_release", "previous_versions", "applied_migrations", "breach")
# Reverse of the rollout (API and services first, web last): web first, then the API,
# then the other services in params order.
REVERT_FIRST = ("web", "api")


@dataclass(frozen=True)
class Revert:
    """One service to return to its previous version, and the command that does it."""

    service: str
    current: str | None  # what its health endpoint reported when the plan was made
    target: str
    source: str  # where the target came from (a record or a parameter)
    argv: list[str]

    @property
    def command(self) -> str:
        return scrub(shlex.join(self.argv))


@dataclass
class RollbackPlan:
    """Everything the rollback will do and where each fact came from."""

    env: str
    release: str
    reverts: list[Revert]
    snapshot: Snapshot
    snapshot_source: str
    applied_migrations: list[str]
    breach: Any
    database: str  # the target database's name: what `confirm_restore` must equal
    database_at: str  # user@host:port/db, never the password
    records: dict[str, str] = field(default_factory=dict)  # runbook -> record path

    @property
    def previous_release(self) -> str | None:
        """The one version every service returns to, or None when they differ."""
        targets = {r.target for r in self.reverts}
        return targets.pop() if len(targets) == 1 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "release": self.release,
            "previous_release": self.previous_release,
            "reverts": [
                {"service": r.service, "from": r.current, "to": r.target, "source": r.source}
                for r in self.reverts
            ],
            "snapshot": str(self.snapshot.path),
            "snapshot_sha256": self.snapshot.sha256,
            "snapshot_source": self.snapshot_source,
            "applied_migrations": list(self.applied_migrations),
            "breach": self.breach,
            "database": self.database,
            "records": dict(self.records),
        }

    def to_text(self) -> str:
        return render.rollback_plan_text(self)

    __repr__ = to_text

    def _repr_html_(self) -> str:
        return render.rollback_plan_html(self)


# -- prefill ------------------------------------------------------------------------------
def _given(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The overrides that were actually passed (empty strings and {} mean "not given")."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ConfigError(
            f"unknown rollback override(s) {', '.join(unknown)}; expected {', '.join(OVERRIDES)}"
        )
    return {k: v for k, v in overrides.items() if v not in (None, "", {}, [])}


def _resolve(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path if path.is_absolute() else paths.project_root() / path


def snapshot_from_path(value: str | os.PathLike[str]) -> Snapshot:
    """A snapshot named by a parameter: its ``.manifest.json``, or the dump beside one.

    The manifest is required: it holds the SHA-256 the file must still match and the row
    counts the rollback is verified against.
    """
    path = _resolve(value)
    if path.name.endswith(".manifest.json"):
        manifest, dump = path, None
    else:
        stem = path.name[: -len(".dump")] if path.name.endswith(".dump") else path.name
        manifest, dump = path.parent / f"{stem}.manifest.json", path
    if not manifest.is_file():
        raise ConfigError(
            f"snapshot={str(value)!r}: no manifest {manifest} found; pass the "
            "<name>.manifest.json written beside the snapshot (it holds the SHA-256 and row "
            "counts the rollback checks against)",
            key="snapshot",
        )
    try:
        snap = load_snapshot(manifest)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{manifest}: not a snapshot manifest ({exc})", key="snapshot") from None
    # The dump that travels with its manifest wins over where it was first written.
    beside = dump or manifest.parent / Path(snap.path).name
    snap.path = beside if beside.exists() else _resolve(snap.path)
    return snap


def _revert_command(svc: ServiceSpec, values: Mapping[str, str], source: Path | None) -> list[str]:
    template = svc.rollback or svc.deploy
    if not template:
        raise ConfigError(
            f"{source}: service {svc.name!r} has neither a rollback nor a deploy command; "
            "add services[].rollback (an argv template with {version})",
            key=f"services.{svc.name}.rollback",
        )
    return render_argv(template, values)


def _ordered(services: list[ServiceSpec]) -> list[ServiceSpec]:
    first = [s for name in REVERT_FIRST for s in services if s.name == name]
    return first + [s for s in services if s not in first]


def _refused(exc: records.RecordUntrusted) -> RestoreRefused:
    return RestoreRefused(f"refusing the rollback: {exc}; nothing was changed")


def _snapshot_record(env: str, release: str, facts: scraps.SnapshotFacts) -> str:
    """The 02 record that took the snapshot 03 copied, verified against the ledger; the
    restore is refused (RestoreRefused naming it) when it was edited, deleted or unchained.

    03 names it (``record``); an older 03 record does not: then the latest passing 02
    record of the release holding a snapshot, which must hold the same SHA-256."""
    named = getattr(facts, "record", None)
    try:
        if named:
            return records.at(env, str(named)).path.name
        taken = records.find(
            env, release, "02-migration-dry-run", passed=True, having=scraps.SnapshotFacts
        )
    except records.RecordUntrusted as exc:
        raise _refused(exc) from None
    if taken is None or taken.read(scraps.SnapshotFacts).sha256 != facts.sha256:
        raise RestoreRefused(
            f"refusing the rollback: no passing 02-migration-dry-run record of {release} in "
            f"{env} holds the snapshot {Path(facts.path).name} (sha256 {facts.sha256[:12]}…) "
            "that 03 recorded; pass snapshot='<its .manifest.json>' to restore it anyway; "
            "nothing was changed"
        )
    return taken.path.name


def prefill(run: session.Runbook, overrides: Mapping[str, Any] | None = None) -> RollbackPlan:
    """The rollback plan from the latest 03-rollout and 04-smoke records, parameters first.

    ``overrides``: ``snapshot`` (a manifest or dump path), ``previous_release`` (the
    version for every service), ``previous_versions`` ({service: version}),
    ``applied_migrations``, ``breach``. Raises ConfigError naming what to pass when a
    fact is in no record.
    """
    given = _given(overrides)
    params, env, release = run.params, run.env, run.release
    try:
        rollout = records.find(env, release, "03-rollout", having=scraps.PreviousVersions)
        smoke = records.find(env, release, "04-smoke", having=scraps.BreachFacts)
    except records.RecordUntrusted as exc:
        raise _refused(exc) from None
    where = f"03-rollout record {rollout.path.name}" if rollout else None
    missing: list[str] = []

    recorded = rollout.read(scraps.PreviousVersions).root if rollout else {}
    targets: dict[str, tuple[str, str]] = {}
    if "previous_release" in given:
        version = validate_release(given["previous_release"], "previous_release")
        for svc in params.services:
            was = recorded.get(svc.name)
            note = f" (record: {was})" if was and was != version else ""
            targets[svc.name] = (version, f"parameter previous_release{note}")
    else:
        chosen = dict(given.get("previous_versions") or recorded)
        source = "parameter previous_versions" if "previous_versions" in given else where
        for svc in params.services:
            if chosen.get(svc.name):
                version = validate_release(chosen[svc.name], f"previous version of {svc.name}")
                targets[svc.name] = (version, str(source))
        lacking = [s.name for s in params.services if s.name not in targets]
        if lacking:
            why = f"{where} has no previous version for {', '.join(lacking)}" if rollout else ""
            missing.append(
                "previous_release='vX.Y.Z' (the version every service returns to)"
                + (f": {why}" if why else "")
            )

    snap, snap_source = None, ""
    if "snapshot" in given:
        snap, snap_source = snapshot_from_path(given["snapshot"]), "parameter snapshot"
    elif rollout and (facts := rollout.read(scraps.SnapshotFacts)):
        taken_by = _snapshot_record(env, release, facts)
        snap, snap_source = facts.to_snapshot(), f"{where} (taken by {taken_by})"
        snap.path = _resolve(snap.path)
    else:
        missing.append(
            "snapshot='<path to the snapshot's .manifest.json>' (taken by 02-migration-dry-run)"
        )

    if same := sorted(name for name, (version, _) in targets.items() if version == release):
        raise ConfigError(
            f"the previous version of {', '.join(same)} is {release}, the release being rolled "
            f"back ({where or 'parameters'}): pass previous_release='vX.Y.Z'",
            key="previous_release",
        )
    if missing:
        looked = f"no 03-rollout record for {env} {release}" if not rollout else str(where)
        raise ConfigError(
            f"cannot prefill the rollback: {looked} (looked in {paths.outputs_dir() / env}); "
            f"pass {' and '.join(missing)}",
            key="snapshot" if not targets else "previous_release",
        )

    url = run.database_url()
    database = db.dbname_of(url)
    if snap.database and snap.database != database:
        raise ConfigError(
            f"snapshot {snap.path} was taken of database {snap.database!r}, but this "
            f"environment's database is {database!r}: pass the snapshot of {database}",
            key="snapshot",
        )
    now = running_versions(params)
    reverts = []
    for svc in _ordered(list(params.services)):
        target, source = targets[svc.name]
        values = {
            "version": target,
            "previous_release": target,
            "release": release,
            "env": env,
            "service": svc.name,
        }
        argv = _revert_command(svc, values, params.source)
        reverts.append(Revert(svc.name, now.get(svc.name), target, source, argv))

    applied = given.get("applied_migrations")
    if applied is None:
        none = scraps.AppliedMigrations([])
        applied = rollout.read(scraps.AppliedMigrations, none).root if rollout else []
    links = {}
    if rollout:
        links["03-rollout"] = str(rollout.path)
    if smoke and "breach" not in given:
        links["04-smoke"] = str(smoke.path)
    return RollbackPlan(
        env=env,
        release=release,
        reverts=reverts,
        snapshot=snap,
        snapshot_source=snap_source,
        applied_migrations=[str(m) for m in applied],
        breach=given.get("breach", smoke.read(scraps.BreachFacts).data() if smoke else None),
        database=database,
        database_at=db.describe(url),
        records=links,
    )
