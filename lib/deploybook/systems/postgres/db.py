"""Database connections and catalog facts: fingerprint, row counts, vector dimensions.

Every psycopg error is mapped into DatabaseError at this boundary with the URL's password
scrubbed, so nothing above this module prints a raw driver error. Identifiers are always
composed with psycopg.sql, never with string formatting.

The fingerprint, snapshot, restore and client-tool modules beside this one build on it;
it imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import register, scrub
from deploybook.core.urlcheck import url_message
from deploybook.errors import DatabaseError

# Query parameters Prisma accepts in DATABASE_URL that libpq would reject.
PRISMA_ONLY_PARAMS = frozenset(
    {"schema", "connection_limit", "pool_timeout", "pgbouncer", "sslaccept", "socket_timeout"}
    | {"statement_cache_size", "sslidentity", "sslpassword"}
)
# pgvector's ivfflat and hnsw refuse `vector` columns with more dimensions than this.
VECTOR_INDEX_MAX_DIM = {"ivfflat": 2000, "hnsw": 2000}
USER_SCHEMAS_SQL = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
)

Conn = psycopg.Connection


# -- URLs ------------------------------------------------------------------------------
def _is_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def split_url(url: str) -> tuple[str, str | None]:
    """(libpq-compatible URL, Prisma ``schema`` or None): drops Prisma-only parameters."""
    if not _is_url(url):
        return url, None
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    kept = [(k, v) for k, v in query if k not in PRISMA_ONLY_PARAMS]
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def conninfo(url: str) -> dict[str, Any]:
    """The libpq parameters of ``url`` (password included: never print this).

    A malformed URL is never echoed, not even scrubbed: an unencoded password breaks it at
    a place the scrubber cannot guess, so the message gives the position only.
    """
    register(url)
    problem = url_message("DATABASE_URL", url) if _is_url(url) else None
    if problem:
        raise DatabaseError(problem)
    clean, schema = split_url(url)
    try:
        params = psycopg.conninfo.conninfo_to_dict(clean)
    except psycopg.Error:
        raise DatabaseError(
            "DATABASE_URL is not a valid URL or connection string (check that the password "
            "is percent-encoded)"
        ) from None
    register(params.get("password"))
    if schema and schema != "public":
        opts = params.get("options", "")
        params["options"] = f"{opts} -c search_path={schema}".strip()
    return params


def describe(url: str) -> str:
    """``user@host:port/db`` — a URL as messages should show it (no password)."""
    p = conninfo(url)
    host = p.get("host") or "localhost"
    return f"{p.get('user', '')}@{host}:{p.get('port', 5432)}/{p.get('dbname', '')}"


def dbname_of(url: str) -> str:
    params = conninfo(url)
    return str(params.get("dbname") or params.get("user") or "")


def with_dbname(url: str, dbname: str) -> str:
    """The same server and credentials, another database (scratch restores)."""
    if _is_url(url):
        parts = urlsplit(url)
        from urllib.parse import quote

        return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


def libpq_env(url: str) -> tuple[str, dict[str, str]]:
    """(conninfo without password, env additions) for pg_dump/pg_restore/psql.

    The password travels in PGPASSWORD, never on argv where `ps` would show it.
    """
    params = conninfo(url)
    password = params.pop("password", None)
    env = {"PGPASSWORD": password} if password else {}
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}), env


# -- connections -----------------------------------------------------------------------
def connect(
    url: str, *, autocommit: bool = False, application_name: str = "deploybook", timeout: int = 10
) -> Conn:
    """Open a connection; any failure becomes DatabaseError naming host/db, never the password."""
    params = conninfo(url)
    params.setdefault("application_name", application_name)
    params.setdefault("connect_timeout", timeout)
    try:
        return psycopg.connect(**params, autocommit=autocommit)
    except psycopg.Error as exc:
        raise DatabaseError(scrub(f"cannot connect to {describe(url)}: {exc}".strip())) from exc


@contextmanager
def using(target: str | Conn) -> Iterator[Conn]:
    """Borrow a connection, or open (and close) one from a URL."""
    borrowed = isinstance(target, psycopg.Connection)
    conn = target if borrowed else connect(target, autocommit=True)
    try:
        yield conn
    except psycopg.Error as exc:
        where = conn.info.dbname if borrowed else describe(target)
        raise DatabaseError(scrub(f"{where}: {exc}")) from exc
    finally:
        if not borrowed:
            conn.close()


def server_version(target: str | Conn) -> tuple[int, str]:
    """(server_version_num, server_version), e.g. (180006, '18.6')."""
    with using(target) as conn:
        num = int(conn.execute("SHOW server_version_num").fetchone()[0])
        text = conn.execute("SHOW server_version").fetchone()[0]
    return num, str(text).split()[0]


def qualname(schema: str, name: str) -> str:
    """``table`` for the public schema, ``schema.table`` otherwise (display and keys)."""
    return name if schema == "public" else f"{schema}.{name}"


# -- catalog facts ---------------------------------------------------------------------
def tables(target: str | Conn) -> list[tuple[str, str]]:
    """User tables (plain, not partitioned parents) as (schema, name), sorted."""
    with using(target) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND {USER_SCHEMAS_SQL} ORDER BY 1, 2"
        ).fetchall()
    return [(s, t) for s, t in rows]


def row_counts(target: str | Conn) -> dict[str, int]:
    """Exact ``count(*)`` per user table — exact on purpose: estimates hide lost rows."""
    counts: dict[str, int] = {}
    with using(target) as conn:
        for schema, name in tables(conn):
            q = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
            counts[qualname(schema, name)] = int(conn.execute(q).fetchone()[0])
    return counts


def extensions(target: str | Conn) -> dict[str, str]:
    """Installed extensions and their versions."""
    with using(target) as conn:
        return dict(conn.execute("SELECT extname, extversion FROM pg_extension ORDER BY 1"))


def sequences(target: str | Conn) -> dict[str, int | None]:
    """Each sequence's last value (None when never used)."""
    with using(target) as conn:
        rows = conn.execute(
            "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2"
        ).fetchall()
    return {qualname(s, n): v for s, n, v in rows}


class VectorColumn(NamedTuple):
    table: str
    column: str
    dim: int | None  # None: declared without a dimension


class VectorIndex(NamedTuple):
    table: str
    index: str
    column: str
    method: str
    dim: int | None


def vector_columns(target: str | Conn) -> list[VectorColumn]:
    """Every pgvector ``vector`` column and its declared dimension (atttypmod)."""
    with using(target) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, a.attname, a.atttypmod FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_type t ON t.oid = a.atttypid WHERE t.typname = 'vector' "
            "AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped "
            f"AND {USER_SCHEMAS_SQL} "
            "ORDER BY 1, 2, 3"
        ).fetchall()
    return [VectorColumn(qualname(s, t), col, mod if mod > 0 else None) for s, t, col, mod in rows]


def vector_indexes(target: str | Conn) -> list[VectorIndex]:
    """Indexes on vector columns with their access method (ivfflat, hnsw, ...)."""
    with using(target) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, i.relname, a.attname, am.amname, a.atttypmod "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_am am ON am.oid = i.relam "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (x.indkey) "
            "JOIN pg_type t ON t.oid = a.atttypid "
            f"WHERE t.typname = 'vector' AND {USER_SCHEMAS_SQL} "
            "ORDER BY 1, 2, 3"
        ).fetchall()
    return [
        VectorIndex(qualname(s, t), idx, col, am, mod if mod > 0 else None)
        for s, t, idx, col, am, mod in rows
    ]


def vector_checks(target: str | Conn, expected_dim: int = 1536, section: str = "7") -> Checks:
    """pgvector facts as checks: each column has ``expected_dim``, each index can hold it."""
    with using(target) as conn:
        if "vector" not in extensions(conn):
            return Checks(
                [
                    Check(
                        "pgvector installed",
                        section,
                        Status.FAIL,
                        "extension vector is not installed",
                    )
                ]
            )
        cols, idxs = vector_columns(conn), vector_indexes(conn)
    return judge_vectors(cols, idxs, expected_dim, section)


def judge_vectors(
    cols: list[VectorColumn],
    idxs: list[VectorIndex],
    expected_dim: int,
    section: str,
    where: str = "",
) -> Checks:
    """Every vector column ``expected_dim`` and every index method able to hold it (pure:
    the columns may come from the live database or from a dry run's migrated state)."""
    at = f" {where}" if where else ""
    bad = [c for c in cols if c.dim != expected_dim]
    listing = ", ".join(f"{c.table}.{c.column}=vector({c.dim or ''})" for c in cols) or "none"
    wrong = ", ".join(f"{c.table}.{c.column} is vector({c.dim})" for c in bad)
    checks = Checks()
    checks.append(
        Check(
            f"vector dimensions = {expected_dim}",
            section,
            Status.FAIL if bad else (Status.PASS if cols else Status.WARN),
            (f"wrong dimension{at}: {wrong}; " if bad else (f"{where}: " if where else ""))
            + f"columns: {listing}",
            data=[c._asdict() for c in cols],
        )
    )
    refused = [
        i
        for i in idxs
        if i.method in VECTOR_INDEX_MAX_DIM and (i.dim or 0) > VECTOR_INDEX_MAX_DIM[i.method]
    ]
    checks.append(
        Check(
            "vector index methods support the dimension",
            section,
            Status.FAIL if refused else Status.PASS,
            "; ".join(
                f"{i.index} on {i.table}.{i.column} uses {i.method}, which supports at most "
                f"{VECTOR_INDEX_MAX_DIM[i.method]} dimensions (column is vector({i.dim}))"
                for i in refused
            )
            or f"{len(idxs)} vector index(es){at}: "
            + (", ".join(f"{i.index} ({i.method}, {i.dim})" for i in idxs) or "none"),
            data=[i._asdict() for i in idxs],
        )
    )
    return checks


def prisma_rows(target: str | Conn) -> list[dict[str, Any]] | None:
    """Rows of ``_prisma_migrations`` (via search_path), oldest first; None if no table."""
    with using(target) as conn:
        if conn.execute("SELECT to_regclass('_prisma_migrations')").fetchone()[0] is None:
            return None
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        return cur.execute(
            "SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, "
            "applied_steps_count FROM _prisma_migrations ORDER BY started_at, migration_name"
        ).fetchall()


def inventory(target: str | Conn) -> dict[str, Any]:
    """The facts restore verification compares, as JSON-able data (kept in the snapshot)."""
    with using(target) as conn:
        rows = prisma_rows(conn)
        return {
            "tables": [qualname(s, t) for s, t in tables(conn)],
            "row_counts": row_counts(conn),
            "extensions": extensions(conn),
            "vector_columns": [list(c) for c in vector_columns(conn)],
            "prisma_migrations": None
            if rows is None
            else [
                [
                    r["migration_name"],
                    r["checksum"],
                    _iso(r["finished_at"]),
                    _iso(r["rolled_back_at"]),
                    r["applied_steps_count"],
                ]
                for r in rows
            ],
            "sequences": sequences(conn),
        }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
