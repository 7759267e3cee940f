"""Linting migrations with squawk (the `squawk-cli` package), as a lead can read it.

Findings are grouped by squawk rule (count, files, lines), the serious ones first: table
rewrites, blocking locks, and a non-concurrent index on a table that has rows (row counts
from the dry-run database). A rule that deploybook's own apply already satisfies (a
`lock_timeout` it sets, say) is summarised once instead of per file. Lint findings never
block a gate; a missing squawk is a skipped check, not an error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import shorten
from deploybook.systems.prisma.migrations import SECTION, LocalMigration, LocalMigrations
from deploybook.systems.prisma.sqltext import bare_name, created_tables, split_sql, touched_tables

# squawk rule -> what it costs when the statement runs on a live table (serious tier).
SERIOUS: dict[str, str] = {
    "changing-column-type": "rewrites the table under an ACCESS EXCLUSIVE lock",
    "adding-field-with-default": "a volatile default rewrites the table",
    "adding-serial-primary-key-field": "rewrites the table and builds an index under lock",
    "adding-not-nullable-field": "scans the table under an ACCESS EXCLUSIVE lock",
    "adding-required-field": "fails on a table that has rows",
    "adding-foreign-key-constraint": "validates every row holding a lock on both tables",
    "constraint-missing-not-valid": "validates every row under lock",
    "disallowed-unique-constraint": "builds a unique index under lock",
    "require-concurrent-index-creation": "blocks writes while the index builds",
    "require-concurrent-index-deletion": "blocks reads and writes while the index drops",
    "require-concurrent-reindex": "blocks writes while it reindexes",
    "require-concurrent-partition-detach": "blocks the parent table",
    "ban-concurrent-index-creation-in-transaction": "fails inside Prisma's transaction",
    "ban-drop-column": "breaks code still reading the column",
    "ban-drop-table": "breaks code still reading the table",
    "ban-drop-database": "drops a database",
    "ban-drop-not-null": "breaks code that relies on the column being set",
    "renaming-column": "breaks code using the old name",
    "renaming-table": "breaks code using the old name",
    "ban-truncate-cascade": "empties referencing tables too",
    "ban-alter-domain-with-add-constraint": "validates every use of the domain under lock",
    "ban-create-domain-with-constraint": "constraint checks hidden in a domain",
}
# Rules about the session settings an applier may set; satisfied when it sets them.
SETTINGS: dict[str, str] = {
    "require-lock-timeout": "lock_timeout",
    "require-statement-timeout": "statement_timeout",
}
# Rules whose cost is proportional to the rows already in the table.
_ROW_BOUND = set(SERIOUS) - {
    "ban-drop-database",
    "ban-concurrent-index-creation-in-transaction",
    "renaming-column",
    "renaming-table",
    "ban-drop-column",
    "ban-drop-table",
    "ban-drop-not-null",
}


def squawk_path() -> Path | None:
    """The `squawk` binary from squawk-cli: next to this Python, else on PATH."""
    local = Path(sys.executable).parent / "squawk"
    if local.is_file():
        return local
    found = shutil.which("squawk")
    return Path(found) if found else None


@dataclass(frozen=True)
class Finding:
    """One squawk finding, placed: migration, line, statement, table and its row count."""

    rule: str
    migration: str
    line: int
    message: str
    help: str
    statement: str
    table: str | None
    rows: int | None  # None: the table does not exist yet (a pending migration creates it)

    @property
    def serious(self) -> bool:
        if self.rule not in SERIOUS:
            return False
        return self.rule not in _ROW_BOUND or bool(self.rows)


def _place(m: LocalMigration, f: dict[str, Any], rows: Mapping[str, int]) -> Finding:
    line = int(f.get("line", 0)) + 1  # squawk's line is 0-based
    stmts = split_sql(m.sql())
    stmt = next((s for s in reversed(stmts) if s.line <= line), stmts[0] if stmts else None)
    table = rows_of = None
    if stmt is not None:
        new = created_tables(stmt)
        for t in sorted(touched_tables(stmt)):
            name = bare_name(t)
            if name not in new:
                table = name
                break
        if table is not None:
            rows_of = rows.get(table, rows.get(f"public.{table}"))
    return Finding(
        str(f.get("rule_name")),
        m.name,
        line,
        str(f.get("message", "")),
        str(f.get("help") or ""),
        stmt.sql.splitlines()[0][:160] if stmt else "",
        table,
        rows_of,
    )


def _rule_check(
    rule: str, found: list[Finding], section: str, settings: Mapping[str, str]
) -> Check:
    files = defaultdict(list)
    for f in found:
        files[f.migration].append(f)
    serious = [f for f in found if f.serious]
    lines = []
    for name, fs in files.items():
        where = ", ".join(
            f"line {f.line}"
            + (f" ({f.table}: {f.rows:,} rows)" if f.table and f.rows is not None else "")
            + (f" ({f.table}: new table)" if f.table and f.rows is None else "")
            for f in fs
        )
        lines.append(f"  {name}: {where}")
    head = f"{rule} ×{len(found)} in {len(files)} file(s)"
    if serious:
        head += f" — SERIOUS: {SERIOUS[rule]}"
        for f in serious:
            head += f"\n  ! {f.migration} line {f.line}: {f.statement}"
    elif rule in SERIOUS:
        head += f" — only on new or empty tables, harmless here ({SERIOUS[rule]} on a big one)"
    if rule in SETTINGS and SETTINGS[rule] not in settings:
        head += (
            f" — deploybook's apply (systems/prisma/apply.py) sets no {SETTINGS[rule]}, so this "
            f"advice stands: start such migrations with SET {SETTINGS[rule]} = '…'"
        )
    head += f"\n  {found[0].message}" + (f" — {found[0].help}" if found[0].help else "")
    return Check(
        f"lint: {rule}",
        section,
        Status.WARN,
        head + "\n" + "\n".join(lines),
        critical=False,
        data=[
            {"migration": f.migration, "line": f.line, "table": f.table, "rows": f.rows}
            for f in found
        ],
    )


def lint(
    migrations: Sequence[LocalMigration] | LocalMigrations,
    *,
    pg_version: str | None = None,
    exclude: Sequence[str] = (),
    section: str = SECTION,
    squawk: Path | None = None,
    row_counts: Mapping[str, int] | None = None,
    applier_settings: Mapping[str, str] | None = None,
) -> Checks:
    """squawk findings grouped by rule, serious ones first, as non-critical warnings.

    ``row_counts`` (table -> rows, from the dry-run database) tells an index or constraint
    on a big table from one on a new, empty table. ``applier_settings`` are the session
    settings the applier sets for every migration (none, for deploybook's apply today);
    rules they satisfy are summarised in one line instead of reported per file."""
    items = list(migrations.migrations if isinstance(migrations, LocalMigrations) else migrations)
    items = [m for m in items if m.sql_path.is_file()]
    squawk = squawk or squawk_path()
    if squawk is None:
        return Checks(
            [
                Check(
                    "squawk lint",
                    section,
                    Status.SKIP,
                    "squawk not installed (pip install squawk-cli): migrations not linted",
                    critical=False,
                )
            ]
        )
    if not items:
        return Checks(
            [Check("squawk lint", section, Status.SKIP, "no migrations to lint", critical=False)]
        )
    settings = dict(applier_settings or {})
    satisfied = [r for r, s in SETTINGS.items() if s in settings]
    argv = [str(squawk), "--reporter", "json", "--assume-in-transaction"]
    if pg_version:
        argv.append(f"--pg-version={pg_version}")
    if skip := [*exclude, *satisfied]:
        argv.append(f"--exclude={','.join(skip)}")
    out = subprocess.run(
        argv + [str(m.sql_path) for m in items], capture_output=True, text=True, timeout=120
    )
    try:
        raw = json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return Checks(
            [
                Check(
                    "squawk lint",
                    section,
                    Status.WARN,
                    f"squawk exited {out.returncode}: {shorten(out.stderr or out.stdout, 500)}",
                    critical=False,
                )
            ]
        )
    by_path = {str(m.sql_path.resolve()): m for m in items}
    rows = dict(row_counts or {})
    findings = [
        _place(by_path[p], f, rows)
        for f in raw
        if (p := str(Path(f.get("file", "")).resolve())) in by_path
    ]
    by_rule: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_rule[f.rule].append(f)
    order = sorted(
        by_rule,
        key=lambda r: (not any(f.serious for f in by_rule[r]), r not in SERIOUS, r),
    )
    serious = [f for f in findings if f.serious]
    summary = (
        f"{len(findings)} finding(s) of {len(by_rule)} rule(s) in "
        f"{len({f.migration for f in findings})} of {len(items)} file(s); "
        f"{len(serious)} serious"
        + (
            " (" + ", ".join(f"{f.rule} in {f.migration} line {f.line}" for f in serious) + ")"
            if serious
            else ""
        )
        if findings
        else f"no squawk findings in {len(items)} file(s)"
    )
    if satisfied:
        summary += "; not reported: " + ", ".join(
            f"{r} (deploybook's apply sets {SETTINGS[r]} = {settings[SETTINGS[r]]})"
            for r in satisfied
        )
    checks = Checks(
        [
            Check(
                "squawk lint",
                section,
                Status.WARN if serious else Status.PASS,
                summary,
                critical=False,
                data={"rules": {r: len(by_rule[r]) for r in order}, "satisfied": satisfied},
            )
        ]
    )
    for rule in order:
        checks.append(_rule_check(rule, by_rule[rule], section, settings))
    return checks
