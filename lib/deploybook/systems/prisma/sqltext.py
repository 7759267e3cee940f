"""Reading migration SQL without running it: statements, what they need, what they create.

The dry run must know *before* executing which statements PostgreSQL refuses inside a
transaction (and which would end our rolled-back transaction early), and afterwards which
migration creates an object another one failed to find. A small lexer (strings, quoted
identifiers, dollar quotes, nested comments) is enough for that; it never rewrites SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")


@dataclass(frozen=True)
class Statement:
    """One statement: original text, its offset and 1-based line in the file, and its
    code with comments removed and whitespace collapsed (for classification)."""

    sql: str
    offset: int
    line: int
    code: str

    def line_of(self, position: int | None) -> int:
        """File line of a 1-based character position inside this statement."""
        if not position:
            return self.line
        return self.line + self.sql[: max(position - 1, 0)].count("\n")


def _skip_string(text: str, i: int, escape: bool) -> int:
    i += 1
    while i < len(text):
        ch = text[i]
        if escape and ch == "\\":
            i += 2
            continue
        if ch == "'":
            if text.startswith("''", i):
                i += 2
                continue
            return i + 1
        i += 1
    return i


def _scan(text: str) -> list[tuple[int, int, str]]:
    """(start, end, code) per statement, start being its first code character (leading
    comments skipped); code has comments replaced by spaces."""
    out: list[tuple[int, int, str]] = []
    code: list[str] = []
    i, start, n = 0, 0, len(text)
    first: int | None = None
    while i < n:
        ch = text[i]
        if first is None and not ch.isspace() and not text.startswith(("--", "/*"), i):
            first = i
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            code.append(" ")
            continue
        if text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            code.append(" ")
            continue
        if ch == "'":
            prev = text[i - 1] if i else ""
            before = text[i - 2] if i > 1 else ""
            escape = prev in "eE" and not (before.isalnum() or before == "_")
            j = _skip_string(text, i, escape)
            code.append(text[i:j])
            i = j
            continue
        if ch == '"':
            j = i + 1
            while j < n:
                if text[j] == '"':
                    if text.startswith('""', j):
                        j += 2
                        continue
                    break
                j += 1
            code.append(text[i : j + 1])
            i = j + 1
            continue
        if ch == "$" and not (i and (text[i - 1].isalnum() or text[i - 1] in "_$")):
            m = _DOLLAR.match(text, i)
            if m:
                end = text.find(m[0], m.end())
                j = n if end < 0 else end + len(m[0])
                code.append(text[i:j])
                i = j
                continue
        if ch == ";":
            out.append((start if first is None else first, i, "".join(code)))
            code, start, first = [], i + 1, None
            i += 1
            continue
        code.append(ch)
        i += 1
    out.append((start if first is None else first, n, "".join(code)))
    return out


def split_sql(text: str) -> list[Statement]:
    """Split a script into statements (empty and comment-only pieces dropped)."""
    result = []
    for start, end, code in _scan(text):
        squeezed = " ".join(code.split())
        if not squeezed:
            continue
        raw = text[start:end]
        lead = len(raw) - len(raw.lstrip())
        offset = start + lead
        result.append(Statement(raw.strip(), offset, text.count("\n", 0, offset) + 1, squeezed))
    return result


# -- what PostgreSQL refuses inside a transaction block --------------------------------
_NON_TX: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.I), why)
    for p, why in [
        (r"^CREATE (UNIQUE )?INDEX CONCURRENTLY\b", "CREATE INDEX CONCURRENTLY"),
        (r"^DROP INDEX CONCURRENTLY\b", "DROP INDEX CONCURRENTLY"),
        (r"^REINDEX\b.*\bCONCURRENTLY\b", "REINDEX CONCURRENTLY"),
        (
            r"^ALTER TABLE\b.*\bDETACH PARTITION\b.*\bCONCURRENTLY\b",
            "DETACH PARTITION CONCURRENTLY",
        ),
        (r"^VACUUM\b", "VACUUM"),
        (r"^CLUSTER\s*$", "CLUSTER without a table"),
        (r"^(CREATE|DROP) DATABASE\b", "CREATE/DROP DATABASE"),
        (r"^ALTER DATABASE\b.*\bSET TABLESPACE\b", "ALTER DATABASE SET TABLESPACE"),
        (r"^ALTER SYSTEM\b", "ALTER SYSTEM"),
        (r"^(CREATE|DROP) TABLESPACE\b", "CREATE/DROP TABLESPACE"),
        (r"^(CREATE|DROP) SUBSCRIPTION\b", "CREATE/DROP SUBSCRIPTION"),
        (r"^DISCARD ALL\b", "DISCARD ALL"),
    ]
]
_TX_CONTROL = re.compile(
    r"^(BEGIN|START TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|"
    r"PREPARE TRANSACTION)\b",
    re.I,
)
_ADD_VALUE = re.compile(r"^ALTER TYPE\b.*\bADD VALUE\b(?: IF NOT EXISTS)? '((?:[^']|'')*)'", re.I)


def non_transactional(stmt: Statement, server_version_num: int = 180000) -> str | None:
    """Why ``stmt`` cannot run inside our transaction, or None.

    Transaction control (BEGIN/COMMIT/...) is refused too: it would end the dry run's
    transaction and commit what came before it.
    """
    for pattern, what in _NON_TX:
        if pattern.search(stmt.code):
            return f"{what} cannot run inside a transaction block"
    if _TX_CONTROL.search(stmt.code):
        first = stmt.code.split()[0].upper()
        return f"transaction control ({first}) would end the enclosing transaction"
    if _ADD_VALUE.search(stmt.code) and server_version_num < 120000:
        return "ALTER TYPE ... ADD VALUE cannot run inside a transaction block before PostgreSQL 12"
    return None


def added_enum_values(stmt: Statement) -> list[str]:
    m = _ADD_VALUE.search(stmt.code)
    return [m[1].replace("''", "'")] if m else []


_EXT = re.compile(r'^CREATE EXTENSION (?:IF NOT EXISTS )?"?([A-Za-z0-9_\-]+)"?', re.I)


def created_extensions(stmt: Statement) -> list[str]:
    m = _EXT.search(stmt.code)
    return [m[1].lower()] if m else []


# -- which objects a statement creates or touches --------------------------------------
def _ident(name: str) -> str:
    """Regex for identifier ``name`` written bare (case-insensitive) or double-quoted."""
    return rf'(?:"{re.escape(name)}"|(?<![\w"]){re.escape(name)}(?![\w"]))'


_OBJ = r"(?:TABLE|TYPE|INDEX|VIEW|FUNCTION|PROCEDURE|SEQUENCE|SCHEMA|EXTENSION|DOMAIN|TRIGGER)"
_MODS = r"(?:(?:OR REPLACE|UNIQUE|UNLOGGED|TEMP|TEMPORARY|MATERIALIZED|RECURSIVE) )*"
_QUAL = r'(?:(?:"[^"]+"|\w+)\.)?'


def creates(stmt: Statement, name: str, relation: str | None = None) -> bool:
    """Does ``stmt`` create object ``name`` (or column ``name`` of ``relation``)?"""
    ident = _ident(name)
    flags = re.I
    create = (
        rf"^CREATE {_MODS}{_OBJ} (?:CONCURRENTLY )?(?:IF NOT EXISTS )?{_QUAL}{ident}(?=[\s(;]|$)"
    )
    if re.search(create, stmt.code, flags):
        return True
    if re.search(rf"\bADD (?:COLUMN )?(?:IF NOT EXISTS )?{ident} ", stmt.code, flags):
        return True
    if re.search(rf"\bADD CONSTRAINT {ident}", stmt.code, flags):
        return True
    if re.search(rf"\bRENAME (?:COLUMN |CONSTRAINT )?(?:\S+ )?TO {ident}", stmt.code, flags):
        return True
    if relation:  # a column created with its table
        table = rf"^CREATE {_MODS}TABLE (?:IF NOT EXISTS )?{_QUAL}{_ident(relation)}\s*\("
        if re.search(table, stmt.code, flags) and re.search(rf"[(,]\s*{ident}\s", stmt.code, flags):
            return True
    return False


_TOUCH = re.compile(
    r"\b(?:ALTER TABLE(?: IF EXISTS)?(?: ONLY)?|CREATE (?:UNLOGGED )?TABLE(?: IF NOT EXISTS)?|"
    r"INSERT INTO|UPDATE(?: ONLY)?|DELETE FROM(?: ONLY)?|DROP TABLE(?: IF EXISTS)?|"
    r"TRUNCATE(?: TABLE)?|"
    r"REFERENCES|INDEX(?: CONCURRENTLY)?(?: IF NOT EXISTS)?(?: \S+)? ON(?: ONLY)?)\s+"
    r'((?:(?:"[^"]+"|\w+)\.)?(?:"[^"]+"|\w+))',
    re.I,
)


def touched_tables(stmt: Statement) -> set[str]:
    """Tables a statement names as its target (ALTER/CREATE/INSERT/UPDATE/... ON/REFERENCES)."""
    return {m[1].replace('"', "") for m in _TOUCH.finditer(stmt.code)}


# -- what a failed statement was missing -----------------------------------------------
_MISSING_CODES = {"42P01", "42703", "42704", "42883", "3F000", "42P02"}


def missing_object(sqlstate: str | None, message: str) -> tuple[str, str | None] | None:
    """(object name, relation) an undefined-object error complains about, if any."""
    if sqlstate not in _MISSING_CODES:
        return None
    m = re.search(r'column "([^"]+)" of relation "([^"]+)"', message)
    if m:
        return m[1], m[2].split(".")[-1]
    m = re.search(r"column ([\w]+)\.([\w]+) does not exist", message)
    if m:
        return m[2], m[1]
    m = re.search(r"function ([\w.\"]+)\(", message)
    if m:
        return m[1].replace('"', "").split(".")[-1], None
    m = re.search(r'"([^"]+)"', message)
    if m:
        return m[1].split(".")[-1], None
    return None


# -- what a statement provides to later ones (tables, column changes) -------------------
_NAME = r'(?:"[^"]+"|\w+)'
_CREATE_TABLE = re.compile(rf"^CREATE {_MODS}TABLE (?:IF NOT EXISTS )?({_QUAL}{_NAME})", re.I)
_RENAME_TABLE = re.compile(
    rf"^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?{_QUAL}{_NAME} RENAME TO ({_NAME})", re.I
)
_ALTER_TABLE = re.compile(rf"^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?({_QUAL}{_NAME}) (.*)$", re.I)
_COLUMN_ACTION = re.compile(
    rf"\b(?:ALTER (?:COLUMN )?|ADD (?:COLUMN )?(?:IF NOT EXISTS )?|RENAME (?:COLUMN )?{_NAME} TO )"
    rf"({_NAME})",
    re.I,
)
_NOT_COLUMNS = {"constraint", "primary", "foreign", "unique", "check", "exclude", "column"}


def bare_name(name: str) -> str:
    """An identifier as PostgreSQL stores it: schema dropped, quotes removed, else folded."""
    last = re.findall(_NAME, name)[-1] if re.findall(_NAME, name) else name
    return last[1:-1] if last.startswith('"') else last.lower()


def created_tables(stmt: Statement) -> set[str]:
    """Tables a statement creates (CREATE TABLE, ALTER TABLE ... RENAME TO)."""
    out = set()
    if m := _CREATE_TABLE.search(stmt.code):
        out.add(bare_name(m[1]))
    if m := _RENAME_TABLE.search(stmt.code):
        out.add(bare_name(m[1]))
    return out


def changed_columns(stmt: Statement) -> set[tuple[str, str]]:
    """(table, column) pairs an ALTER TABLE adds, alters (type, default, ...) or renames to."""
    m = _ALTER_TABLE.search(stmt.code)
    if not m:
        return set()
    table = bare_name(m[1])
    cols = {bare_name(c[1]) for c in _COLUMN_ACTION.finditer(m[2])}
    return {(table, c) for c in cols if c.lower() not in _NOT_COLUMNS}


def identifiers(stmt: Statement) -> set[str]:
    """Every identifier-like word a statement names (quoted ones as written, bare folded)."""
    return {bare_name(t) for t in re.findall(_NAME, stmt.code)}


# -- what a statement is and the lock it needs (PostgreSQL docs, "Table-Level Locks") ----
_INDEX_ON = re.compile(
    rf"^CREATE (UNIQUE )?INDEX (CONCURRENTLY )?(?:IF NOT EXISTS )?(?:{_NAME} )?ON (?:ONLY )?"
    rf"({_QUAL}{_NAME})(?: USING (\w+))?",
    re.I,
)
_FOREIGN_KEY = re.compile(rf"\b(?:FOREIGN KEY\b.*?)?\bREFERENCES ({_QUAL}{_NAME})", re.I)
_TARGET = re.compile(
    rf"^(?:ALTER TABLE (?:IF EXISTS )?(?:ONLY )?|DROP TABLE (?:IF EXISTS )?|TRUNCATE (?:TABLE )?"
    rf"|INSERT INTO |UPDATE (?:ONLY )?|DELETE FROM (?:ONLY )?|REFRESH MATERIALIZED VIEW "
    rf"(?:CONCURRENTLY )?|CREATE (?:OR REPLACE )?(?:CONSTRAINT )?TRIGGER .*? ON )({_QUAL}{_NAME})",
    re.I,
)


def expected_locks(stmt: Statement) -> dict[str, str]:
    """Table -> the pg_locks mode PostgreSQL takes for this statement on it (common DDL and
    DML only). Used where the dry run cannot observe it: the lock was already held by an
    earlier statement of its one transaction, while production applies each migration in
    its own."""
    code = stmt.code
    if m := _INDEX_ON.search(code):
        mode = "ShareUpdateExclusiveLock" if m[2] else "ShareLock"
        return {bare_name(m[3]): mode}
    m = _TARGET.search(code)
    if not m:
        return {}
    table, head = bare_name(m[1]), code.split()[0].upper()
    if head in ("INSERT", "UPDATE", "DELETE"):
        return {table: "RowExclusiveLock"}
    if head == "CREATE":
        return {table: "ShareRowExclusiveLock"}
    if head == "REFRESH":
        return {
            table: "ExclusiveLock" if " CONCURRENTLY " in code.upper() else "AccessExclusiveLock"
        }
    if head == "ALTER" and re.search(r"\bADD (?:CONSTRAINT \S+ )?FOREIGN KEY\b", code, re.I):
        refs = {bare_name(r[1]) for r in _FOREIGN_KEY.finditer(code)}
        return {t: "ShareRowExclusiveLock" for t in {table, *refs}}
    if head == "ALTER" and re.search(r"\bVALIDATE CONSTRAINT\b", code, re.I):
        return {table: "ShareUpdateExclusiveLock"}
    return {table: "AccessExclusiveLock"}


def index_build(stmt: Statement) -> tuple[str, bool, str | None] | None:
    """(table, concurrently, method) of a CREATE INDEX, else None."""
    m = _INDEX_ON.search(stmt.code)
    return (bare_name(m[3]), bool(m[2]), (m[4] or "btree").lower()) if m else None


def gist(stmt: Statement, limit: int = 60) -> str:
    """The statement in a few words for a lead: ``CREATE INDEX … USING hnsw``."""
    code = stmt.code
    if built := index_build(stmt):
        table, concurrently, method = built
        unique = "UNIQUE " if code.upper().startswith("CREATE UNIQUE") else ""
        return f"CREATE {unique}INDEX {'CONCURRENTLY ' if concurrently else ''}… USING {method}"
    return code if len(code) <= limit else code[: limit - 1].rstrip() + "…"
