"""Post-deploy data integrity (plan section 15) measured against what the release expects.

Two facts `smoke.post_deploy_validation` adds to its database checks: no table lost rows
since the snapshot 02-migration-dry-run took (read from that record's ``snapshot`` scrap),
and every migration folder of the checkout is applied. Judging is pure (counts and names
in, a verdict out); the thin readers take the open connection the caller already holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deploybook.systems.prisma import migrations
from deploybook.session import records
from deploybook.core.checks import Check, Status
from deploybook.config import Params
from deploybook.errors import ConfigError

SECTION = "15"
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
        env, release, SNAPSHOT_RUNBOOK, passed=True, having="snapshot", outputs=outputs
    )
    if record is None:
        return None, (
            f"no passing {SNAPSHOT_RUNBOOK} record of {release} in {env} holds a snapshot: "
            f"nothing to compare row counts with (run 02 before the rollout: deploybook run 02 "
            f"--env {env} --release {release})"
        )
    snap = record.scrap("snapshot") or {}
    counts = (snap.get("inventory") or {}).get("row_counts")
    if not isinstance(counts, dict):
        return None, f"the snapshot in {record.path.name} records no row counts"
    source = (
        f"snapshot {Path(str(snap.get('path', '?'))).name} of {snap.get('database') or '?'} "
        f"taken {snap.get('created_at', '?')} ({record.path.name})"
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
    """Plan section 15: key tables' row counts are not lower than the snapshot's."""
    before, source = snapshot_counts(env, release, outputs)
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
