"""The schema fingerprint: proof that a dry run (or anything else) changed no schema.

A SHA-256 over the catalog as sorted, OID-free rows — tables, columns, types, indexes,
constraints, extensions, functions, enums, triggers, views — so equal fingerprints mean
an identical schema, and `catalog_diff` says what differs when they are not.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from deploybook.systems.postgres.db import USER_SCHEMAS_SQL, Conn, using

_CATALOG_QUERIES: dict[str, str] = {
    "relations": f"""
        SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r','p','v','m','f','S') AND {USER_SCHEMAS_SQL}""",
    "columns": f"""
        SELECT n.nspname, c.relname,
               row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)::int,
               a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','v','m','f')
          AND {USER_SCHEMAS_SQL}""",
    "indexes": f"""
        SELECT n.nspname, i.relname, pg_get_indexdef(i.oid) FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE {USER_SCHEMAS_SQL}""",
    "constraints": f"""
        SELECT n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {USER_SCHEMAS_SQL}""",
    "extensions": "SELECT extname, extversion, extnamespace::regnamespace::text FROM pg_extension",
    "functions": f"""
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_function_result(p.oid), md5(coalesce(p.prosrc, ''))
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {USER_SCHEMAS_SQL} AND NOT EXISTS (SELECT 1 FROM pg_depend d
              WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')""",
    "types": f"""
        SELECT n.nspname, t.typname, t.typtype::text,
               (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                FROM pg_enum e WHERE e.enumtypid = t.oid)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd') AND {USER_SCHEMAS_SQL}
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
              WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')""",
    "triggers": f"""
        SELECT n.nspname, c.relname, g.tgname, pg_get_triggerdef(g.oid) FROM pg_trigger g
        JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT g.tgisinternal AND {USER_SCHEMAS_SQL}""",
    "views": f"""
        SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {USER_SCHEMAS_SQL}""",
}


def schema_catalog(target: str | Conn) -> dict[str, list[list[Any]]]:
    """The schema as sorted, OID-free rows per kind: what the fingerprint hashes."""
    with using(target) as conn:
        return {
            kind: sorted(
                ([str(v) if v is not None else None for v in row] for row in conn.execute(q)),
                key=lambda r: [x or "" for x in r],
            )
            for kind, q in _CATALOG_QUERIES.items()
        }


def fingerprint_of(catalog: dict[str, list[list[Any]]]) -> str:
    return hashlib.sha256(json.dumps(catalog, sort_keys=True).encode()).hexdigest()


def schema_fingerprint(target: str | Conn) -> str:
    """SHA-256 over tables, columns, types, indexes, constraints, extensions, functions,
    enums, triggers and views: equal fingerprints mean an identical schema."""
    return fingerprint_of(schema_catalog(target))


def catalog_diff(
    before: dict[str, list[list[Any]]], after: dict[str, list[list[Any]]]
) -> list[str]:
    """Human-readable differences between two catalogs (why fingerprints differ)."""
    out: list[str] = []
    for kind in sorted(set(before) | set(after)):
        a = {json.dumps(r) for r in before.get(kind, [])}
        b = {json.dumps(r) for r in after.get(kind, [])}
        out += [f"{kind}: removed {r}" for r in sorted(a - b)]
        out += [f"{kind}: added {r}" for r in sorted(b - a)]
    return out


def count_diff(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """Tables whose row count differs (or that appeared/disappeared)."""
    return [
        f"{t}: {before.get(t, 'absent')} -> {after.get(t, 'absent')}"
        for t in sorted(set(before) | set(after))
        if before.get(t) != after.get(t)
    ]
