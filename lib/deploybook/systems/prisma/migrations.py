"""Prisma migrations: the folder, `_prisma_migrations`, status, apply (as `migrate deploy`), lint.

Prisma's rules this module follows so that `prisma migrate status` agrees afterwards:
- a migration is a folder in `prisma/migrations`, ordered by name, holding `migration.sql`;
  its checksum is the SHA-256 (lowercase hex) of that file's bytes (a CRLF/LF-only
  difference still matches, as in prisma-engines' `script_matches_checksum`);
- applied = a row with finished_at set and rolled_back_at null; failed = a row with both
  null, which makes `migrate deploy` refuse to run (P3009);
- `migrate deploy` holds `pg_advisory_lock(72707369)` while it works.

Applying lives in `prisma.apply`, linting in `prisma.lint`, the dry run in
`prisma.dryrun`; each imports this module, never the other way round.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from deploybook.core.checks import Check, Checks, Status
from deploybook.errors import ConfigError
from deploybook.systems.postgres import db
from deploybook.systems.prisma.resolve import resolve_guidance, utc

SECTION = "7"
_FOLDER = re.compile(r"^(\d{14})_(.+)$")


# -- the local folder ------------------------------------------------------------------
def checksum(data: bytes) -> str:
    """Prisma's migration checksum: SHA-256 of the file's bytes, lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def checksum_matches(data: bytes, recorded: str) -> bool:
    """True if ``recorded`` is the checksum of the file as is or with LF/CRLF swapped."""
    lf = data.replace(b"\r\n", b"\n")
    return recorded in {checksum(data), checksum(lf), checksum(lf.replace(b"\n", b"\r\n"))}


@dataclass(frozen=True)
class LocalMigration:
    """One migration folder (or a loose raw-SQL file, kind='raw_sql')."""

    name: str
    path: Path
    checksum: str | None  # None when migration.sql is missing
    timestamp: str | None = None  # None when the folder name is not <14 digits>_<name>
    label: str | None = None
    kind: str = "migration"

    @property
    def sql_path(self) -> Path:
        return self.path / "migration.sql" if self.kind == "migration" else self.path

    def sql(self) -> str:
        return self.sql_path.read_text(encoding="utf-8")

    def data(self) -> bytes:
        return self.sql_path.read_bytes()


@dataclass
class LocalMigrations:
    """What `prisma/migrations` holds, troubles included (they are reported, not raised)."""

    folder: Path
    migrations: list[LocalMigration]
    loose_sql: list[Path] = field(default_factory=list)
    provider: str | None = None
    lock_file: Path | None = None

    @property
    def bad_names(self) -> list[str]:
        return [m.name for m in self.migrations if m.timestamp is None]

    @property
    def missing_sql(self) -> list[str]:
        return [m.name for m in self.migrations if m.checksum is None]

    def raw(self, names: Iterable[str]) -> list[LocalMigration]:
        """The loose .sql files named (in that order) as raw SQL for the dry run."""
        out = []
        for name in names:
            path = self.folder / name
            if not path.is_file():
                raise ConfigError(f"raw SQL file {name!r} is not in {self.folder}")
            out.append(LocalMigration(name, path, checksum(path.read_bytes()), kind="raw_sql"))
        return out


def read_migrations(folder: Path | str) -> LocalMigrations:
    """Read a Prisma migrations folder: migrations ordered as Prisma orders them (by
    folder name), loose .sql files beside them, and the migration_lock.toml provider."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"Prisma migrations folder {folder} does not exist")
    migrations, loose = [], []
    provider, lock_file = None, None
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            sql_file = entry / "migration.sql"
            digest = checksum(sql_file.read_bytes()) if sql_file.is_file() else None
            m = _FOLDER.match(entry.name)
            migrations.append(
                LocalMigration(entry.name, entry, digest, m[1] if m else None, m[2] if m else None)
            )
        elif entry.name == "migration_lock.toml":
            lock_file = entry
            try:
                provider = tomllib.loads(entry.read_text()).get("provider")
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{entry}: not valid TOML ({exc})") from exc
        elif entry.suffix.lower() == ".sql":
            loose.append(entry)
    return LocalMigrations(folder, migrations, loose, provider, lock_file)


# -- the database side -----------------------------------------------------------------
@dataclass(frozen=True)
class AppliedRow:
    """One `_prisma_migrations` row."""

    id: str
    checksum: str
    migration_name: str
    started_at: datetime
    finished_at: datetime | None = None
    rolled_back_at: datetime | None = None
    logs: str | None = None
    applied_steps_count: int = 0

    @property
    def failed(self) -> bool:
        return self.finished_at is None and self.rolled_back_at is None

    @property
    def applied(self) -> bool:
        return self.finished_at is not None and self.rolled_back_at is None


def read_applied(url: str) -> list[AppliedRow] | None:
    """`_prisma_migrations` rows oldest first, or None when the table does not exist."""
    rows = db.prisma_rows(url)
    return None if rows is None else [AppliedRow(**r) for r in rows]


@dataclass
class MigrationStatus:
    """`prisma migrate status` and more, as data plus checks."""

    local: LocalMigrations
    rows: list[AppliedRow] | None
    applied: list[str]
    pending: list[LocalMigration]
    failed: list[AppliedRow]
    drift: list[dict[str, str]]
    missing_locally: list[str]
    checks: Checks

    @property
    def ok(self) -> bool:
        return self.checks.ok

    def _repr_html_(self) -> str:
        return self.checks._repr_html_()


def compare_status(
    local: LocalMigrations,
    rows: list[AppliedRow] | None,
    raw_sql: Sequence[str] = (),
    section: str = SECTION,
) -> MigrationStatus:
    """Pure comparison of the folder with the table's rows (None = no table yet)."""
    checks = Checks()

    def add(
        name: str, status: Status, evidence: str, data: Any = None, critical: bool = True
    ) -> None:
        checks.append(Check(name, section, status, evidence, critical=critical, data=data))

    # the folder on its own
    if local.provider == "postgresql":
        add("prisma provider", Status.PASS, "postgresql (migration_lock.toml)")
    elif local.provider is None:
        add("prisma provider", Status.WARN, f"no migration_lock.toml provider in {local.folder}")
    else:
        add(
            "prisma provider",
            Status.FAIL,
            f"migration_lock.toml says {local.provider!r}, not postgresql",
        )
    bad = local.bad_names
    add(
        "migration folder names",
        Status.WARN if bad else Status.PASS,
        f"not <14 digits>_<name> (Prisma still applies them, ordered by name): {', '.join(bad)}"
        if bad
        else f"{len(local.migrations)} folders named <14 digits>_<name>",
        bad,
    )
    if local.missing_sql:
        add(
            "migration.sql present",
            Status.FAIL,
            "folders without migration.sql (Prisma stops with P3015): "
            + ", ".join(local.missing_sql),
        )
    by_ts: dict[str, list[str]] = defaultdict(list)
    by_label: dict[str, list[str]] = defaultdict(list)
    for m in local.migrations:
        if m.timestamp:
            by_ts[m.timestamp].append(m.name)
            by_label[m.label or ""].append(m.name)
    dup_ts = {k: v for k, v in by_ts.items() if len(v) > 1}
    dup_label = {k: v for k, v in by_label.items() if len(v) > 1}
    add(
        "duplicate timestamps",
        Status.WARN if dup_ts else Status.PASS,
        "; ".join(
            f"{ts}: {' and '.join(v)} (applied in name order — check they do not depend "
            "on each other the other way round)"
            for ts, v in dup_ts.items()
        )
        or "none",
        dup_ts,
    )
    add(
        "duplicate names",
        Status.WARN if dup_label else Status.PASS,
        "; ".join(f"{k!r}: {', '.join(v)}" for k, v in dup_label.items()) or "none",
        dup_label,
    )
    loose = [p.name for p in local.loose_sql]
    named = [n for n in raw_sql if n in loose]
    unknown = [n for n in raw_sql if n not in loose]
    unnamed = [n for n in loose if n not in raw_sql]
    if unknown:
        add(
            "loose .sql files", Status.FAIL, f"params name raw SQL not in {local.folder}: {unknown}"
        )
    else:
        add(
            "loose .sql files",
            Status.WARN if unnamed else Status.PASS,
            "; ".join(
                ([f"run as raw SQL, in this order: {', '.join(named)}"] if named else [])
                + (
                    [f"not applied by Prisma and not named in params: {', '.join(unnamed)}"]
                    if unnamed
                    else []
                )
            )
            or "none",
            {"named": named, "unnamed": unnamed},
            critical=False,
        )

    # against the database
    by_name = {m.name: m for m in local.migrations}
    rows_list = rows or []
    applied = [r.migration_name for r in rows_list if r.applied]
    failed = [r for r in rows_list if r.failed]
    failed_names = {r.migration_name for r in failed}
    rolled_back = [r.migration_name for r in rows_list if r.rolled_back_at is not None]
    pending = [m for m in local.migrations if m.name not in set(applied) | failed_names]
    missing = sorted({r.migration_name for r in rows_list if r.applied} - set(by_name))
    drift = []
    for r in rows_list:
        m = by_name.get(r.migration_name)
        if r.applied and m and m.checksum and not checksum_matches(m.data(), r.checksum):
            drift.append(
                {"migration": r.migration_name, "recorded": r.checksum, "local": m.checksum}
            )
    if rows is None:
        add(
            "applied migrations",
            Status.SKIP,
            "no _prisma_migrations table: the database was never migrated by Prisma (all pending)",
        )
    else:
        add(
            "applied migrations",
            Status.PASS,
            f"{len(applied)} applied"
            + (f", latest {applied[-1]}" if applied else "")
            + (f"; marked rolled back: {', '.join(rolled_back)}" if rolled_back else ""),
            applied,
        )
    add(
        "pending migrations",
        Status.PASS,
        f"{len(pending)} pending: {', '.join(m.name for m in pending)}"
        if pending
        else "none pending",
        [m.name for m in pending],
        critical=False,
    )
    if applied and pending:
        early = [m.name for m in pending if m.name < max(applied)]
        if early:
            add(
                "pending ordered before applied",
                Status.WARN,
                f"{', '.join(early)} sort before the latest applied migration {max(applied)} "
                "(merged late?): Prisma applies them now, after newer ones",
                early,
            )
    add(
        "failed migrations",
        Status.FAIL if failed else Status.PASS,
        "\n".join(
            f"{r.migration_name} started {utc(r.started_at)} never finished: "
            + (
                r.logs.strip().splitlines()[-1]
                if r.logs and r.logs.strip()
                else "no logs (the process applying it was killed or lost its connection)"
            )
            + "; prisma migrate deploy refuses with P3009 until it is resolved. "
            + resolve_guidance(r.migration_name)
            for r in failed
        )
        or "none",
        [r.migration_name for r in failed],
    )
    add(
        "checksum drift",
        Status.FAIL if drift else Status.PASS,
        "; ".join(
            f"{d['migration']}: recorded {d['recorded'][:12]}…, local migration.sql "
            f"{d['local'][:12]}… (edited after it was applied)"
            for d in drift
        )
        or f"{len(applied)} applied migrations match their local migration.sql",
        drift,
    )
    add(
        "applied but missing locally",
        Status.WARN if missing else Status.PASS,
        f"in _prisma_migrations but not in {local.folder}: {', '.join(missing)}"
        if missing
        else "none",
        missing,
    )
    return MigrationStatus(local, rows, applied, pending, failed, drift, missing, checks)


def migration_status(
    local: LocalMigrations, url: str, raw_sql: Sequence[str] = (), section: str = SECTION
) -> MigrationStatus:
    """Read `_prisma_migrations` and compare it with the local folder."""
    return compare_status(local, read_applied(url), raw_sql, section)
