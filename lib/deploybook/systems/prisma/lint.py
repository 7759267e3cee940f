"""Linting migrations with squawk (the `squawk-cli` package): advice shown as warnings.

Lint findings never block a gate; a missing squawk is a skipped check, not an error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deploybook.core.checks import Check, Checks, Status
from deploybook.systems.prisma.migrations import SECTION, LocalMigration, LocalMigrations


def squawk_path() -> Path | None:
    """The `squawk` binary from squawk-cli: next to this Python, else on PATH."""
    local = Path(sys.executable).parent / "squawk"
    if local.is_file():
        return local
    found = shutil.which("squawk")
    return Path(found) if found else None


def lint(
    migrations: Sequence[LocalMigration] | LocalMigrations,
    *,
    pg_version: str | None = None,
    exclude: Sequence[str] = (),
    section: str = SECTION,
    squawk: Path | None = None,
) -> Checks:
    """squawk findings per migration, as non-critical warnings (lint advises, never gates)."""
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
    argv = [str(squawk), "--reporter", "json", "--assume-in-transaction"]
    if pg_version:
        argv.append(f"--pg-version={pg_version}")
    if exclude:
        argv.append(f"--exclude={','.join(exclude)}")
    out = subprocess.run(
        argv + [str(m.sql_path) for m in items], capture_output=True, text=True, timeout=120
    )
    try:
        findings = json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return Checks(
            [
                Check(
                    "squawk lint",
                    section,
                    Status.WARN,
                    f"squawk exited {out.returncode}: {(out.stderr or out.stdout)[:500]}",
                    critical=False,
                )
            ]
        )
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in findings:
        by_file[str(Path(f.get("file", "")).resolve())].append(f)
    checks = Checks()
    for m in items:
        found = by_file.get(str(m.sql_path.resolve()), [])
        evidence = "\n".join(
            f"line {f.get('line', 0) + 1}: {f.get('rule_name')}: {f.get('message')}"
            + (f" — {f['help']}" if f.get("help") else "")
            for f in found
        )
        checks.append(
            Check(
                f"lint: {m.name}",
                section,
                Status.WARN if found else Status.PASS,
                evidence or "no squawk findings",
                critical=False,
                data=[{k: f.get(k) for k in ("line", "rule_name", "message")} for f in found],
            )
        )
    return checks
