"""The cells of runbook 02 (plan section 7): snapshot, verified restore, migration status,
dry run, pgvector dimensions and lint — one function per notebook cell.

Each function takes the `Runbook`, records its checks on it, glues what later runbooks
read, and returns what its cell shows: the new `Checks` (the snapshot cell: the
`Snapshot`). The work is done by `deploybook.systems.postgres` and
`deploybook.systems.prisma`; this module only finds the inputs in the params file and the
environment, and turns our errors into failed checks so the gate names them and the later
cells still report.

Snapshots go beside the run's record (``<record dir>/snapshots``), so the audit folder
holds the file its scraps cite; an absolute ``database.snapshot_dir`` in params (a backup
volume) is used as is instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deploybook.core import audit, paths
from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, DeploybookError
from deploybook.runbooks.migration_dry_run import standby
from deploybook.runbooks.migration_dry_run.impact import impact_checks
from deploybook.runbooks.migration_dry_run.target import (
    dry_run_target,
    kept_check,
    target_check,
    verified_copy,
    wants_copy,
)
from deploybook.session import scraps
from deploybook.session.runbook import Runbook, headless, in_notebook, show
from deploybook.systems import git as repo
from deploybook.systems.postgres import db, names
from deploybook.systems.postgres import restore as pg_restore_mod
from deploybook.systems.postgres import snapshot as pg_snapshot
from deploybook.systems.postgres.restore import drop_scratch
from deploybook.systems.postgres.snapshot import Snapshot
from deploybook.systems.prisma import dryrun, migrated, migrations
from deploybook.systems.prisma import lint as sqllint
from deploybook.systems.prisma import schema as prisma_schema
from deploybook.systems.prisma.lockclock import lock_check
from deploybook.systems.prisma.migrated import MigratedState

__all__ = [
    "dry_run",
    "lint",
    "migration_status",
    "scratch_name",
    "snapshot_dir",
    "take_snapshot",
    "verify_snapshot_restore",
    "vector_dimensions",
]

SECTION = "7"


# -- inputs ----------------------------------------------------------------------------
def _checkout(run: Runbook) -> Path:
    path = run.params.checkout.path
    return path if path.is_absolute() else paths.project_root() / path


def _migrations_folder(run: Runbook) -> Path:
    return _checkout(run) / run.params.checkout.migrations_dir


def snapshot_dir(run: Runbook) -> Path:
    """An absolute ``database.snapshot_dir`` as is; otherwise ``<record dir>/snapshots``."""
    configured = run.params.database.snapshot_dir
    return (configured if configured.is_absolute() else run.record_dir / "snapshots").resolve()


def scratch_name(env: str, stamp: str) -> str:
    """``deploybook_scratch_<env>_<stamp>``, unique however long ``env`` is (names.py)."""
    return names.scratch_name(env, stamp)


def _failed(name: str, exc: DeploybookError) -> Check:
    return Check(name, SECTION, Status.FAIL, f"{type(exc).__name__}: {exc}")


@contextmanager
def _progress(enabled: bool, desc: str) -> Iterator[Callable[[str], None] | None]:
    """A tqdm bar ticking once per message from a long step (pg_dump, pg_restore, dry run).

    None in a headless notebook run: nobody watches it, and the record would keep only the
    bar's first frame ("0 steps"); the checks carry the durations instead.
    """
    if not enabled or (in_notebook() and headless()):
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, unit=" step", bar_format="{desc}: {n_fmt} steps [{elapsed}] {postfix}")

    def tick(message: str) -> None:
        bar.set_postfix_str(scrub(message)[-80:], refresh=False)
        bar.update(1)

    try:
        yield tick
    finally:
        bar.close()


# -- cells -----------------------------------------------------------------------------
def take_snapshot(run: Runbook, progress: bool = True) -> Snapshot | None:
    """Full pg_dump named ``<env>-<release>-<UTC stamp>``; records the check "snapshot taken"
    and glues its facts (`scraps.SnapshotFacts`, what 03 and 05 read). On failure: a failed
    check and None."""
    spec = run.params.database
    name = f"{run.env}-{run.release}-{audit.utc_stamp()}"
    try:
        with _progress(progress, "pg_dump") as tick:
            snap = pg_snapshot.snapshot(
                run.database_url(),
                snapshot_dir(run),
                name,
                fmt=spec.snapshot_format,
                jobs=spec.snapshot_jobs,
                compress=spec.snapshot_compress,
                bin_dir=run.pg_bin_dir,
                progress=tick,
            )
    except DeploybookError as exc:
        show(run.record(_failed("snapshot taken", exc)))
        return None
    rows = sum((snap.inventory or {}).get("row_counts", {}).values())
    run.record(
        Check(
            "snapshot taken",
            SECTION,
            Status.PASS,
            f"{snap.path}: {snap.size:,} bytes, sha256 {snap.sha256}, {snap.format} "
            f"(compress {snap.compress}), {rows:,} rows, pg_dump {snap.pg_dump_version}, "
            f"PostgreSQL {snap.server_version}, {snap.duration_s:.1f}s",
            duration_s=snap.duration_s,
            data={"path": str(snap.path), "size": snap.size, "sha256": snap.sha256},
        )
    )
    scraps.SnapshotFacts.of(snap).glue()
    return snap


def verify_snapshot_restore(
    run: Runbook,
    snap: Snapshot | None,
    keep: bool = False,
    progress: bool = True,
    target: str = "",
) -> Checks:
    """Restore ``snap`` into a scratch database matching ``database.scratch_pattern`` and
    compare it with the source. A copy proven equal is kept for the dry run when it runs on
    a scratch copy (``target``, as the dry run's: one restore, not two), else dropped unless
    ``keep``."""
    if snap is None:
        skipped = Check(
            "restore verification", SECTION, Status.SKIP, "no snapshot to verify (above)"
        )
        return run.record(skipped)
    spec = run.params.database
    scratch = scratch_name(run.env, audit.utc_stamp())
    wants_standby = standby.wanted(run)
    keeps_standby = wants_standby and not keep  # keep_scratch: kept to inspect instead
    for_dry_run = wants_copy(run, target) and not keeps_standby  # migrations stay off it
    if (earlier := verified_copy(run.checks, snap.sha256)) and not earlier["keep"]:
        with contextlib.suppress(DeploybookError):  # this cell run again: one copy at a time
            drop_scratch(run.database_url(), earlier["scratch"], spec.scratch_pattern)
    try:
        with _progress(progress, "pg_restore") as tick:
            result = pg_restore_mod.verify_restore(
                snap,
                run.database_url(),
                scratch,
                spec.scratch_pattern,
                keep=keep or for_dry_run or keeps_standby,
                progress=tick,
                bin_dir=run.pg_bin_dir,
                jobs=spec.snapshot_jobs,
                service_copy=keeps_standby,
            )
    except DeploybookError as exc:
        return run.record(_failed("restore verification", exc))
    checks = Checks(result.checks)
    if keeps_standby and result.ok:
        checks.append(standby.keep(run, scratch, snap))
    elif for_dry_run and result.ok:
        checks.append(kept_check(scratch, snap.sha256, keep))
    elif (for_dry_run or keeps_standby) and not keep:  # not proven equal: nothing uses it
        with contextlib.suppress(DeploybookError):
            drop_scratch(run.database_url(), scratch, spec.scratch_pattern)
    if keep and wants_standby:
        checks.append(standby.not_kept("keep_scratch keeps the verified copy to inspect instead"))
    if keep:
        checks.append(
            Check(
                "scratch database kept",
                SECTION,
                Status.WARN,
                f"{scratch} kept on request (keep_scratch): drop it when done",
                critical=False,
            )
        )
    return run.record(checks)


def migration_status(run: Runbook) -> Checks:
    """`prisma migrate status` and more (drift, failed rows, names, loose SQL); glues
    `scraps.MigrationStatusFacts` (applied, pending, failed, drift, missing locally)."""
    folder = _migrations_folder(run)
    try:
        local = migrations.read_migrations(folder)
        status = migrations.migration_status(local, run.database_url(), run.params.database.raw_sql)
    except DeploybookError as exc:
        return run.record(_failed("migration status", exc))
    scraps.MigrationStatusFacts(
        folder=str(folder),
        provider=local.provider,
        applied=status.applied,
        pending=[m.name for m in status.pending],
        pending_checksums={m.name: m.checksum for m in status.pending},
        failed=[r.migration_name for r in status.failed],
        drift=status.drift,
        missing_locally=status.missing_locally,
        loose_sql=[p.name for p in local.loose_sql],
        raw_sql=list(run.params.database.raw_sql),
        ok=status.ok,
    ).glue()
    return run.record([_at_release(run), *status.checks])


def _at_release(run: Runbook) -> Check:
    """The migrations on disk are the release tag's: else the dry run proves another release."""
    name, rel = "migrations are the release's", run.params.checkout.migrations_dir
    checkout, folder = _checkout(run), _migrations_folder(run)
    try:
        tagged = repo.tree_sha(checkout, run.release, rel)
        head = repo.tree_sha(checkout, "HEAD", rel)
        dirty = repo.git(checkout, "status", "--porcelain", "--", rel).stdout.strip()
    except DeploybookError as exc:
        return Check(name, SECTION, Status.WARN, f"cannot confirm: {exc}", critical=False)
    if tagged is None:
        return Check(
            name,
            SECTION,
            Status.WARN,
            f"{rel} not found at {run.release} in {checkout}: cannot confirm",
            critical=False,
        )
    if head != tagged or dirty:
        changed = f"; uncommitted: {' '.join(dirty.split())[:300]}" if dirty else ""
        return Check(
            name,
            SECTION,
            Status.FAIL,
            f"{folder} differs from {run.release}{changed}: check out the tag "
            f"(git checkout {run.release}) and rerun",
        )
    return Check(name, SECTION, Status.PASS, f"{rel} is {run.release}'s (tree {tagged[:12]})")


def dry_run(
    run: Runbook, snap: Snapshot | None = None, target: str = "", progress: bool = True
) -> Checks:
    """Pending migrations, then ``database.raw_sql`` in order, in one rolled-back
    transaction; ends with the proof that the schema and row counts did not change, and
    records what each statement will cost production ("migration impact").

    By default it runs on the scratch copy the restore verification above proved equal to
    the source (restoring one only when there is none), dropped afterwards: the live
    database is not even read under lock. On the live database (refused in production
    unless params allow it) the record also shows each lock taken and how long it was
    held: what traffic waited for."""
    spec = run.params.database
    try:
        where = dry_run_target(run, target)
    except ConfigError as exc:  # refused before anything runs
        return run.record(_failed("dry run target", exc))
    checks = Checks()
    scratch, keep = None, False
    facts: dict[str, Any] = {"target": where, "verified_copy": False, "restores": 0}
    try:
        url = run.database_url()
        local = migrations.read_migrations(_migrations_folder(run))
        status = migrations.migration_status(local, url, spec.raw_sql)
        raw = local.raw(spec.raw_sql)
        if where == "scratch":
            if snap is None:
                raise ConfigError("dry run on a scratch restore needs the snapshot above")
            copy = verified_copy(run.checks, snap.sha256)
            if copy is not None:
                scratch, keep = copy["scratch"], bool(copy["keep"])
                facts.update(scratch=scratch, verified_copy=True, restores=1)
                evidence = (
                    f"the verified scratch copy {scratch} of snapshot {snap.sha256[:12]}… "
                    "(restored once and proven equal to the source above)"
                )
            else:
                scratch = scratch_name(run.env, audit.utc_stamp() + "dry")
                with _progress(progress, "restore for dry run") as tick:
                    pg_restore_mod.verify_restore(
                        snap,
                        url,
                        scratch,
                        spec.scratch_pattern,
                        keep=True,
                        progress=tick,
                        bin_dir=run.pg_bin_dir,
                        jobs=spec.snapshot_jobs,
                    )
                facts.update(scratch=scratch, restores=1)
                evidence = (
                    f"scratch restore {scratch} of snapshot {snap.sha256[:12]}… (no verified "
                    "copy above)"
                )
            evidence += "; pass dry_run_target='live' to use the live database"
            checks.append(target_check(run, where, evidence, facts))
            url = db.with_dbname(url, scratch)
        else:
            checks.append(
                target_check(
                    run, where, "live database, inside a transaction that is rolled back", facts
                )
            )
        with _progress(progress, "dry run") as tick:
            report = dryrun.dry_run(
                url,
                status.pending,
                raw,
                progress=tick,
                lock_timeout=spec.lock_timeout,
                statement_timeout=spec.impact.statement_budget or spec.statement_timeout,
                schema=prisma_schema.schema_path(local.folder),
                history=[*local.migrations, *raw],
                complete=spec.impact.run_to_completion and where == "scratch",
            )
        checks.extend(report.checks)
        if where == "live":
            checks.append(lock_check(report.lock_holds, SECTION))
        checks.extend(impact_checks(report, facts, spec.impact))
    except DeploybookError as exc:
        checks.append(_failed("dry run", exc))
    finally:
        if scratch and not keep:
            with contextlib.suppress(DeploybookError):
                drop_scratch(run.database_url(), scratch, spec.scratch_pattern)
    return run.record(checks)


def _migrated_state(run: Runbook) -> MigratedState | None:
    """The state the dry run above recorded before its rollback (None: no dry run)."""
    found = next((c for c in reversed(run.checks) if c.name == migrated.CHECK_NAME), None)
    return MigratedState.from_data(found.data) if found is not None else None


def vector_dimensions(run: Runbook) -> Checks:
    """pgvector installed, every vector column ``epic.embedding_dimension``, every index able
    to hold it — judged on the state the pending migrations leave (recorded by the dry run
    before its rollback); on the database as it is only when there was no dry run."""
    dim = run.params.epic.embedding_dimension
    state = _migrated_state(run)
    if state is not None:
        return run.record(migrated.vector_checks(state, dim, SECTION))
    try:
        checks = db.vector_checks(run.database_url(), dim, SECTION)
    except DeploybookError as exc:
        return run.record(_failed("vector dimensions", exc))
    for c in checks:
        c.evidence = f"on the database as it is (no dry run above): {c.evidence}"
    return run.record(checks)


def lint(run: Runbook) -> Checks:
    """squawk findings for the pending migrations and raw SQL: warnings, never a gate."""
    try:
        url = run.database_url()
        local = migrations.read_migrations(_migrations_folder(run))
        status = migrations.migration_status(local, url, run.params.database.raw_sql)
        units: list[migrations.LocalMigration] = [
            *status.pending,
            *local.raw(run.params.database.raw_sql),
        ]
        _, version = db.server_version(url)
        state = _migrated_state(run)
        rows = state.row_counts if state is not None else db.row_counts(url)
    except DeploybookError as exc:
        return run.record(Check("squawk lint", SECTION, Status.WARN, f"not linted: {exc}", False))
    return run.record(sqllint.lint(units, pg_version=version, section=SECTION, row_counts=rows))
