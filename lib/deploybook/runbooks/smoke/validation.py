"""Post-deploy data integrity (plan section 15) measured against what the release expects.

`post_deploy_validation` opens one connection and checks vector dimensions, Prisma's
migration rows, every migration folder of the checkout applied, the key tables' rows, and
no table with fewer rows than the snapshot 02-migration-dry-run took (read from that
record's `scraps.SnapshotFacts`). Judging is pure (counts and names in, a verdict out);
the thin readers take the open connection the caller already holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deploybook.config import Params
from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import read_secret, scrub
from deploybook.errors import ConfigError, DeploybookError
from deploybook.session import records, scraps
from deploybook.systems.prisma import migrations

SECTION = SECTION_VALIDATION = "15"
KEY_TABLES = ("content_chunks", "concepts")
DB_CONNECT_TIMEOUT_S = 5
DB_STATEMENT_TIMEOUT_MS = 15_000
SNAPSHOT_RUNBOOK = "02-migration-dry-run"
ROW_COUNTS = "row counts not lower than the snapshot"
APPLIED = "every expected migration applied"
_LIST_LIMIT = 15


def _listed(items: list[str]) -> str:
    more = f" … and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
    return ", ".join(items[:_LIST_LIMIT]) + more


# --- row counts against the snapshot ---------------------------------------------------------


def judge_row_counts(
    before: Mapping[str, int],
    after: Mapping[str, int | None],
    key_tables: Iterable[str],
    source: str,
) -> tuple[Status, str, dict[str, Any]]:
    """Every table the snapshot counted has at least as many rows now.

    A key table with fewer rows (or gone) fails; any other table that shrank only warns,
    since users may delete their own rows between the snapshot and the validation.
    """
    keys = set(key_tables)
    lower = {t: (n, now) for t, n in before.items() if (now := after.get(t)) is None or now < n}
    gone = {t for t, (_, now) in lower.items() if now is None}

    def describe(table: str) -> str:
        was, now = lower[table]
        return f"{table} {was} -> {'missing' if table in gone else now}"

    key_lower = sorted(t for t in lower if t in keys)
    other_lower = sorted(t for t in lower if t not in keys)
    grown = sum(1 for t, n in before.items() if (after.get(t) or 0) > n)
    data = {"snapshot": dict(before), "now": dict(after), "lower": sorted(lower)}
    lines = []
    if key_lower:
        shown = _listed([describe(t) for t in key_lower])
        lines.append(f"key table(s) lost rows since the snapshot: {shown}")
    if other_lower:
        lines.append(
            f"other table(s) with fewer rows: {_listed([describe(t) for t in other_lower])}"
        )
    if key_lower or other_lower:
        status = Status.FAIL if key_lower else Status.WARN
        return status, "\n".join([*lines, f"compared with {source}"]), data
    keys_seen = ", ".join(f"{t}={after.get(t)}" for t in sorted(keys & set(before)))
    return (
        Status.PASS,
        f"{len(before)} table(s) at or above their snapshot counts ({grown} grew)"
        + (f"; {keys_seen}" if keys_seen else "")
        + f"\ncompared with {source}",
        data,
    )


def snapshot_counts(
    env: str, release: str | None, outputs: Path | None = None
) -> tuple[dict[str, int] | None, str]:
    """The row counts in the latest passing 02 record's snapshot, and where they came from
    (or None and why there is nothing to compare with)."""
    if not release:
        return None, "no release given: cannot find the 02-migration-dry-run snapshot"
    record = records.find(
        env, release, SNAPSHOT_RUNBOOK, passed=True, having=scraps.SnapshotFacts, outputs=outputs
    )
    if record is None:
        return None, (
            f"no passing {SNAPSHOT_RUNBOOK} record of {release} in {env} holds a snapshot: "
            f"nothing to compare row counts with (run 02 before the rollout: deploybook run 02 "
            f"--env {env} --release {release})"
        )
    snap = record.read(scraps.SnapshotFacts)
    counts = snap.row_counts
    if counts is None:
        return None, f"the snapshot in {record.path.name} records no row counts"
    source = (
        f"snapshot {Path(snap.path).name} of {snap.database or '?'} "
        f"taken {snap.created_at or '?'} ({record.path.name})"
    )
    return {str(t): int(n) for t, n in counts.items()}, source


def count_rows(conn: Any, tables: Iterable[str]) -> dict[str, int | None]:
    """Exact ``count(*)`` of each named table (``schema.table`` or public ``table``);
    None for a table that no longer exists."""
    from psycopg import sql

    counts: dict[str, int | None] = {}
    for table in tables:
        schema, _, name = table.rpartition(".")
        ident = sql.Identifier(schema or "public", name)
        exists = conn.execute("SELECT to_regclass(%s)", [ident.as_string(conn)]).fetchone()[0]
        if exists is None:
            counts[table] = None
            continue
        q = sql.SQL("SELECT count(*) FROM {}").format(ident)
        counts[table] = int(conn.execute(q).fetchone()[0])
    return counts


def row_count_check(
    conn: Any, env: str, release: str | None, key_tables: Iterable[str], outputs: Path | None = None
) -> Check:
    """Plan section 15: key tables' row counts are not lower than the snapshot's (read from
    a 02 record verified against the ledger: an edited one fails, naming it)."""
    try:
        before, source = snapshot_counts(env, release, outputs)
    except records.RecordUntrusted as exc:
        return Check(ROW_COUNTS, SECTION, Status.FAIL, str(exc), data=exc.record)
    if before is None:
        return Check(ROW_COUNTS, SECTION, Status.SKIP, source)
    status, evidence, data = judge_row_counts(before, count_rows(conn, before), key_tables, source)
    return Check(ROW_COUNTS, SECTION, status, evidence, data=data)


# --- every expected migration applied --------------------------------------------------------


def judge_applied(
    status: migrations.MigrationStatus, folder: str, require: bool = True
) -> tuple[Status, str, dict[str, Any]]:
    """Every migration folder of the checkout has a finished row in ``_prisma_migrations``.

    ``require=False`` (the release may not be deployed here yet) turns a failure into a
    warning.
    """
    expected = [m.name for m in status.local.migrations]
    applied = set(status.applied)
    missing = [name for name in expected if name not in applied]
    failed = {r.migration_name for r in status.failed}
    data = {"expected": expected, "missing": missing, "failed": sorted(failed)}
    if not expected:
        return Status.WARN, f"{folder} holds no migration folders: nothing to compare", data
    if missing:
        shown = [f"{n} (failed)" if n in failed else n for n in missing]
        table = "" if status.rows is not None else " (no _prisma_migrations table)"
        evidence = (
            f"{len(missing)} of {len(expected)} migration(s) in {folder} not applied{table}: "
            f"{_listed(shown)}"
        )
        if not require:
            evidence += (
                "\nnot critical: expect_version is not set, so the release is not assumed to "
                "be deployed here (pass expect_version to require every migration)"
            )
        return Status.FAIL if require else Status.WARN, evidence, data
    return (
        Status.PASS,
        f"all {len(expected)} migration(s) in {folder} applied, latest {expected[-1]}",
        data,
    )


def applied_check(params: Params, rows: list[dict[str, Any]] | None, require: bool = True) -> Check:
    """Plan section 15: the checkout's migrations folder against ``_prisma_migrations`` rows
    (as `db.prisma_rows` read them on the caller's connection)."""
    folder = params.checkout.migrations_dir
    try:
        local = migrations.read_migrations(Path(params.checkout.path) / folder)
    except ConfigError as exc:
        return Check(
            APPLIED,
            SECTION,
            Status.WARN,
            f"cannot list the expected migrations: {exc} (checkout.path, checkout.migrations_dir)",
            critical=False,
        )
    applied_rows = None if rows is None else [migrations.AppliedRow(**r) for r in rows]
    status = migrations.compare_status(local, applied_rows, section=SECTION)
    verdict, evidence, data = judge_applied(status, folder, require)
    return Check(APPLIED, SECTION, verdict, evidence, critical=require, data=data)


# --- the database after the deploy ---------------------------------------------------------


def failed_migrations(rows: list[Mapping[str, Any]]) -> list[str]:
    """Prisma rows that failed or never finished (and were not resolved as rolled back)."""
    out = []
    for row in rows:
        if row.get("finished_at") is None and row.get("rolled_back_at") is None:
            logs = (row.get("logs") or "").strip().splitlines()
            out.append(f"{row['migration_name']}" + (f" ({logs[0][:160]})" if logs else ""))
    return out


def _migration_check(rows: list[dict[str, Any]] | None) -> Check:
    name = "_prisma_migrations has no failed rows"
    if rows is None:
        return Check(
            name,
            SECTION_VALIDATION,
            Status.FAIL,
            "table _prisma_migrations does not exist: were the migrations applied "
            "(03-rollout step 'apply migrations')?",
        )
    failed = failed_migrations(rows)
    if failed:
        return Check(
            name,
            SECTION_VALIDATION,
            Status.FAIL,
            f"{len(failed)} failed or unfinished migration(s): {'; '.join(failed)} — resolve "
            "with `prisma migrate resolve` or run 05-rollback",
            data={"failed": failed, "rows": len(rows)},
        )
    return Check(
        name,
        SECTION_VALIDATION,
        Status.PASS,
        f"{len(rows)} migration row(s), all finished",
        data={"rows": len(rows), "latest": rows[-1]["migration_name"] if rows else None},
    )


def _count_check(conn: Any, tables: tuple[str, ...]) -> Check:
    from psycopg import errors, sql

    counts: dict[str, int | None] = {}
    for table in tables:
        exists = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0]
        if exists is None:
            counts[table] = None
            continue
        q = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        try:
            counts[table] = int(conn.execute(q).fetchone()[0])
        except errors.QueryCanceled:
            raise DeploybookError(
                f"counting {table} took longer than {DB_STATEMENT_TIMEOUT_MS / 1000:g} s"
            ) from None
    missing = [t for t, n in counts.items() if n is None]
    empty = [t for t, n in counts.items() if n == 0]
    listing = ", ".join(f"{t}={'missing' if n is None else n}" for t, n in counts.items())
    problems = [f"missing table(s): {', '.join(missing)}"] * bool(missing)
    problems += [f"empty table(s): {', '.join(empty)}"] * bool(empty)
    return Check(
        "key tables have rows",
        SECTION_VALIDATION,
        Status.FAIL if problems else Status.PASS,
        "; ".join([*problems, listing]),
        data=counts,
    )


def post_deploy_validation(
    params: Params,
    environ: Mapping[str, str] | None = None,
    *,
    key_tables: tuple[str, ...] = KEY_TABLES,
    release: str | None = None,
    require_applied: bool = True,
) -> Checks:
    """Data integrity after the migration: vector dimensions, Prisma rows, every migration
    of the checkout applied, key tables' rows, and no fewer rows than 02's snapshot.

    The URL comes from the environment variable named by ``database.url_env``; a missing
    secret or an unreachable database is one failed check, not a traceback. ``release``
    finds the snapshot (skipped without it); ``require_applied=False`` makes unapplied
    migrations a warning (the release may not be deployed here yet).
    """
    import psycopg

    from deploybook.systems.postgres import db

    name = f"database reachable ({params.database.url_env})"
    try:
        url = read_secret(params.database.url_env, environ).reveal()
        conn = db.connect(url, autocommit=True, timeout=DB_CONNECT_TIMEOUT_S)
    except DeploybookError as exc:
        return Checks(
            [Check(name, SECTION_VALIDATION, Status.FAIL, f"{type(exc).__name__}: {exc}")]
        )
    checks = Checks([Check(name, SECTION_VALIDATION, Status.PASS, db.describe(url))])
    try:
        with conn:
            conn.execute(f"SET statement_timeout = {int(DB_STATEMENT_TIMEOUT_MS)}")
            checks.extend(
                db.vector_checks(conn, params.epic.embedding_dimension, SECTION_VALIDATION)
            )
            rows = db.prisma_rows(conn)
            checks.append(_migration_check(rows))
            checks.append(applied_check(params, rows, require_applied))
            checks.append(_count_check(conn, key_tables))
            checks.append(row_count_check(conn, params.environment.name, release, key_tables))
    except DeploybookError as exc:
        checks.append(
            Check("data integrity", SECTION_VALIDATION, Status.FAIL, f"{type(exc).__name__}: {exc}")
        )
    except psycopg.Error as exc:  # the count query runs outside db's helpers: mapped here
        checks.append(
            Check(
                "data integrity",
                SECTION_VALIDATION,
                Status.FAIL,
                scrub(f"{db.describe(url)}: {exc}"),
            )
        )
    return checks
