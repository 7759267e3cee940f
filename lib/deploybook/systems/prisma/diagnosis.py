"""From a dry run's raw errors to causes a lead can act on.

Each failing migration is one of: a knock-on (it needs what an earlier failed migration
would have created: a warning pointing there), an ordering error (it succeeds when retried
after all later migrations, which the dry run measures; the later migration it needs is
named when its SQL shows it), or a root cause. Failures on the same missing object are one
root cause with its knock-ons listed; a missing table that `schema.prisma` declares and no
migration creates is schema drift, reported with the way to baseline it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from deploybook.core.checks import Check, Status
from deploybook.systems.prisma.migrations import LocalMigration
from deploybook.systems.prisma.schema import PrismaSchema
from deploybook.systems.prisma.sqltext import (
    Statement,
    added_enum_values,
    bare_name,
    changed_columns,
    created_tables,
    creates,
    identifiers,
    missing_object,
    touched_tables,
)

_HINTS = {
    "55P03": "lock_timeout expired: a live session holds a conflicting lock on this table",
    "57014": "statement_timeout expired: the statement runs longer than the configured limit",
    "25001": "cannot run inside a transaction block",
}


def error_info(exc: psycopg.Error, stmt: Statement, index: int) -> dict[str, Any]:
    """What the lead needs of an SQL error: SQLSTATE, message, hint, statement, line."""
    diag = exc.diag
    pos = int(diag.statement_position) if diag.statement_position else None
    message = (diag.message_primary or str(exc)).strip()
    hint = diag.message_hint or _HINTS.get(exc.sqlstate or "")
    if "more than 2000 dimensions" in message:
        hint = (
            "ivfflat and hnsw index at most 2000 dimensions of vector: use halfvec (up to 4000), "
            "reduce the dimension, or no index"
        )
    return {
        "sqlstate": exc.sqlstate,
        "message": message,
        "detail": diag.message_detail,
        "hint": hint,
        "statement_index": index + 1,
        "line": stmt.line_of(pos),
        "position": pos,
        "statement": stmt.sql[:500],
    }


_NEEDS_EXTENSION = {"42883", "42704"}  # undefined function / type: what extensions provide


@dataclass
class UnitResult:
    """The verdict for one migration or raw SQL file."""

    name: str
    kind: str
    status: Status = Status.PASS
    duration_s: float = 0.0
    statements: int = 0
    error: dict[str, Any] | None = None
    skipped: list[dict[str, Any]] = field(default_factory=list)
    locks: list[tuple[str, str]] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    blocked_by: str | None = None
    ordering_after: str | None = None
    note: str = ""
    missing_extensions: list[str] = field(default_factory=list)
    retried: bool = False
    retry_error: dict[str, Any] | None = None
    knock_ons: list[str] = field(default_factory=list)
    drift: dict[str, Any] | None = None
    # A statement over the dry run's budget (`meter.StatementRun` as a dict): a finding.
    overrun: dict[str, Any] | None = None

    def data(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "skipped": self.skipped,
            "locks": self.locks,
            "tables": self.tables,
            "blocked_by": self.blocked_by,
            "ordering_after": self.ordering_after,
            "knock_ons": self.knock_ons,
            "drift": self.drift,
            "retried": self.retried,
            "retry_error": self.retry_error,
            "overrun": self.overrun,
        }


def tables_created(units: Iterable[Sequence[Statement]]) -> set[str]:
    """Every table some statement of ``units`` creates."""
    return {t for stmts in units for s in stmts for t in created_tables(s)}


def _where(res: UnitResult) -> str:
    e = res.error or {}
    return f"{res.name} (statement {e.get('statement_index')}, line {e.get('line')})"


def _pin(
    units: Sequence[LocalMigration],
    stmts: Sequence[Sequence[Statement]],
    idx: int,
    err: dict[str, Any],
) -> str | None:
    """The later migration whose statements create or change what the failing one needs."""
    stmts_err = stmts[idx][err["statement_index"] - 1]
    missing = missing_object(err["sqlstate"], err["message"])
    later = range(idx + 1, len(units))
    if missing:
        for j in later:
            if any(creates(s, *missing) for s in stmts[j]):
                return units[j].name
    tables = {bare_name(t) for t in touched_tables(stmts_err)}
    names = identifiers(stmts_err)
    for j in later:
        for s in stmts[j]:
            if any(t in tables and c in names for t, c in changed_columns(s)):
                return units[j].name
            if created_tables(s) & names:
                return units[j].name
    return None


def _drift(schema: PrismaSchema | None, table: str, created: set[str]) -> dict[str, Any] | None:
    if schema is None or table in created:
        return None
    model = schema.model_for(table)
    if model is None:
        return None
    return {
        "model": model.name,
        "table": model.table,
        "line": model.line,
        "schema": str(schema.path),
    }


def _drift_note(drift: dict[str, Any], root: str) -> str:
    return (
        f"schema drift: schema.prisma line {drift['line']} declares model {drift['model']} "
        f"(table {drift['table']}) but no migration creates it — it was created outside "
        "migrations (e.g. `prisma db push`), so a database built from the migrations lacks it. "
        "Fix: baseline it with a migration that sorts before "
        f"{root}: in the prisma folder run `prisma migrate diff --from-migrations migrations "
        "--to-schema-datamodel schema.prisma --shadow-database-url $SHADOW_DATABASE_URL "
        f"--script > migrations/<timestamp>_baseline_{drift['table']}/migration.sql`, keep the "
        f"{drift['table']} part, then `prisma migrate resolve --applied "
        f"<timestamp>_baseline_{drift['table']}` on every database that already has the table"
    )


def classify(
    units: Sequence[LocalMigration],
    stmts: Sequence[Sequence[Statement]],
    results: Sequence[UnitResult],
    schema: PrismaSchema | None = None,
    history_tables: set[str] | None = None,
) -> None:
    """Set each result's status and note: root cause, knock-on or ordering error."""
    created = tables_created(stmts) | (history_tables or set())
    roots: dict[tuple[str, str | None], UnitResult] = {}
    for idx, res in enumerate(results):
        err = res.error
        if err and err["sqlstate"] == "55P04":  # unsafe use of a new enum value
            value = err["message"].split('"')[1] if '"' in err["message"] else ""
            if not any(value in added_enum_values(s) for s in stmts[idx]):
                res.status = Status.WARN
                res.note = (
                    "uses an enum value added by an earlier migration: works when each "
                    "migration commits on its own, cannot be proven in one transaction"
                )
                continue
        if res.overrun and not err:
            res.status, res.note = Status.WARN, overrun_note(res.overrun)
        if err:
            res.status = Status.FAIL
            _diagnose(units, stmts, results, idx, schema, created, roots)
        if res.skipped:
            _skipped(res, only=len(stmts[idx]) == 1)


def _diagnose(
    units: Sequence[LocalMigration],
    stmts: Sequence[Sequence[Statement]],
    results: Sequence[UnitResult],
    idx: int,
    schema: PrismaSchema | None,
    created: set[str],
    roots: dict[tuple[str, str | None], UnitResult],
) -> None:
    res = results[idx]
    err = res.error or {}
    missing = missing_object(err["sqlstate"], err["message"])
    creator = bool(missing) and any(creates(s, *missing) for u in stmts for s in u)
    if missing:  # knock-on of an earlier failure that would have created the object
        name, rel = missing
        for j in range(idx):
            prior = results[j]
            not_run = [s["statement_index"] for s in prior.skipped]
            if prior.overrun and prior.overrun.get("outcome") == "overrun":
                not_run += [prior.overrun["index"], *prior.overrun.get("not_run", [])]
            skipped_creates = any(creates(stmts[j][k - 1], name, rel) for k in not_run)
            if (prior.error or skipped_creates) and any(creates(s, name, rel) for s in stmts[j]):
                res.blocked_by, res.status = prior.name, Status.WARN
                res.note = (
                    f"knock-on: blocked by {prior.name}, which failed before creating {name!r}"
                )
                prior.knock_ons.append(res.name)
                return
        ext = next((r for r in results[:idx] if r.missing_extensions), None)
        if ext and err["sqlstate"] in _NEEDS_EXTENSION and not creator:
            res.blocked_by, res.status = ext.name, Status.WARN
            res.note = (
                f"knock-on: needs {name!r}, which no migration creates — presumably from "
                f"extension {', '.join(ext.missing_extensions)}, which {ext.name} could not create"
            )
            ext.knock_ons.append(res.name)
            return
    if res.retried and res.retry_error is None:
        pin = _pin(units, stmts, idx, err)
        res.ordering_after = pin
        res.note = (
            "ordering error: fails in order, succeeds when retried after all later "
            "migrations (measured in the dry run); "
            + (
                f"{pin} must come first (it creates or changes what this migration needs): "
                f"give {res.name} a timestamp after {pin}'s"
                if pin
                else "succeeds once all later migrations have run"
            )
        )
        return
    if res.retried and res.retry_error:
        r = res.retry_error
        res.note = (
            f"root cause: still fails when retried after all later migrations "
            f"(statement {r['statement_index']}, line {r['line']}: {r['message']})"
        )
    if res.missing_extensions:
        res.note = (
            f"root cause: extension {', '.join(res.missing_extensions)} is not available on "
            "this server: install it there (or drop it from the migration)"
        )
    if not missing or creator:
        return
    key = (missing[0], missing[1])
    root = roots.get(key)
    kind = {"42P01": "relation", "42704": "type", "42883": "function"}.get(err["sqlstate"])
    what = (
        f'column "{missing[0]}" of relation "{missing[1]}"'
        if missing[1]
        else f'{kind or "object"} "{missing[0]}"'
    )
    if root is None:
        roots[key] = res
        table = missing[0] if err["sqlstate"] == "42P01" else missing[1]
        res.drift = _drift(schema, bare_name(table), created) if table else None
        res.note = f"root cause: {what} does not exist and no pending migration creates it"
        if res.drift:
            res.note += "; " + _drift_note(res.drift, res.name)
        return
    res.status, res.blocked_by = Status.WARN, root.name
    res.note = (
        f"knock-on of the root cause in {root.name}: the same {what} does not exist "
        "(reported there once)"
    )
    root.knock_ons.append(res.name)


def _skipped(res: UnitResult, only: bool) -> None:
    reasons = "; ".join(f"line {s['line']}: {s['reason']}" for s in res.skipped)
    control = all(s["reason"].startswith("transaction control") for s in res.skipped)
    if control and not res.error:
        res.status = Status.WARN
        res.note = (
            f"not run: {reasons}. Prisma would run it, committing part of the "
            "migration on its own; the dry run cannot prove the rest"
        )
    elif only and not res.error:
        res.status = Status.WARN
        res.note = (
            f"not run: {reasons}. Prisma runs a one-statement migration outside a "
            "transaction, so deploy can apply it; the dry run cannot prove it"
        )
    else:
        res.status = Status.FAIL
        res.note = ((res.note + "; ") if res.note else "") + (
            f"not run: {reasons}. With other statements in the file, Prisma runs it in one "
            "implicit transaction and PostgreSQL refuses it: move it to its own migration"
        )


def overrun_note(run: dict[str, Any]) -> str:
    """ "exceeds 60 s — at least 60 s of SHARE on content_chunks": an overrun as a finding."""
    from deploybook.systems.prisma.lockclock import mode_name

    budget, took = run.get("budget_s") or 0.0, run["duration_s"]
    locks = "; ".join(f"{mode_name(m)} on {t}" for t, m in run.get("locks", [])) or "no lock seen"
    where = f"statement {run['index']}, line {run['line']}: {run['gist']}"
    if run.get("outcome") == "overrun":
        rest = run.get("not_run") or []
        return (
            f"exceeds {budget:g} s — at least {budget:g} s of {locks} ({where}); stopped by the "
            "dry run's budget (database.impact.statement_budget), not an SQL error"
            + (f"; statements {', '.join(map(str, rest))} not run" if rest else "")
            + ". Set database.impact.run_to_completion to measure it to the end"
        )
    return (
        f"exceeds {budget:g} s — {took:.2f} s of {locks} ({where}), run to completion on the "
        "scratch copy (database.impact.run_to_completion)"
    )


def evidence(res: UnitResult) -> str:
    """What the lead reads for one migration: cause, then error, statement, locks."""
    parts = []
    if res.note:
        parts.append(res.note)
    if res.knock_ons:
        parts.append(f"knock-ons (warnings): {', '.join(res.knock_ons)}")
    if res.error:
        e = res.error
        parts.append(
            f"SQLSTATE {e['sqlstate']} at statement {e['statement_index']} (line {e['line']}"
            + (f", position {e['position']}" if e["position"] else "")
            + f"): {e['message']}"
        )
        if e.get("hint"):
            parts.append(f"hint: {e['hint']}")
        parts.append(f"statement: {e['statement'][:200]}")
    elif not res.skipped and res.status is Status.PASS:
        parts.append(f"ok: {res.statements} statement(s) in {res.duration_s:.2f}s")
    if res.locks:
        parts.append("locks: " + ", ".join(f"{rel} {mode}" for rel, mode in res.locks))
    if res.tables:
        parts.append("tables: " + ", ".join(res.tables))
    return "\n".join(parts)


def drift_check(schema: PrismaSchema | None, created: set[str], section: str) -> Check | None:
    """schema.prisma's models against the tables the migrations create (None: no schema)."""
    if schema is None:
        return None
    missing = [m for m in schema.models if m.table not in created]
    if not missing:
        return Check(
            "schema.prisma vs migrations",
            section,
            Status.PASS,
            f"every table of the {len(schema.models)} models in {schema.path.name} is created "
            "by a migration",
            critical=False,
        )
    listing = ", ".join(f"{m.name} → {m.table} (line {m.line})" for m in missing)
    return Check(
        "schema.prisma vs migrations",
        section,
        Status.WARN,
        f"schema drift: {schema.path.name} declares tables no migration creates: {listing}. "
        "They were created outside migrations (e.g. `prisma db push`): baseline them with a "
        "migration (`prisma migrate diff --from-migrations migrations --to-schema-datamodel "
        "schema.prisma --script`), then `prisma migrate resolve --applied <that migration>` "
        "where the tables already exist",
        critical=False,
        data=[{"model": m.name, "table": m.table, "line": m.line} for m in missing],
    )
