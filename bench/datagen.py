"""The benchmark database: an Americano-shaped schema generated inside PostgreSQL.

Why in-database: ``ARRAY(SELECT random() FROM generate_series(1, 1536) WHERE g > 0)`` makes
one random vector per row without shipping 1.3 GB through Python (the ``WHERE g > 0``
correlates the subquery with the row; without it PostgreSQL evaluates it once and every
row gets the same vector). Two connections fill halves of the table in parallel.

The HNSW index is over ``binary_quantize(embedding)`` (pgvector's documented way to index
large vectors): pg_restore rebuilds every index on both sides of the comparison, and the
full-precision m=16/ef_construction=64 index would add minutes of identical work to every
restore. Its build time on a sample is measured and reported instead.

A generated database is cached: its spec and timings sit in the database's comment, so a
rerun with the same size reuses it.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deploybook.sandbox.postgres import PgCluster
from deploybook.systems.postgres import db

from .common import Size

SPEC_VERSION = 1
HNSW_SAMPLE = 20_000
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE concepts (
    id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE content_chunks (
    id bigserial PRIMARY KEY, concept_id int NOT NULL REFERENCES concepts (id),
    content text NOT NULL, embedding vector(1536) NOT NULL);
CREATE TABLE validation_responses (
    id bigserial PRIMARY KEY, user_id int NOT NULL, prompt_id int NOT NULL,
    score double precision NOT NULL, confidence_level smallint NOT NULL, answer text NOT NULL,
    created_at timestamptz NOT NULL);
CREATE TABLE _prisma_migrations (
    id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ,
    migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0);
INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
SELECT gen_random_uuid()::text, md5(g::text) || md5((-g)::text), now(),
       to_char(timestamp '2025-09-01' + g * interval '1 day', 'YYYYMMDDHH24MISS') || '_m' || g, 1
FROM generate_series(1, 12) g;
INSERT INTO concepts (name) SELECT 'concept ' || g FROM generate_series(1, 2000) g;
"""
VECTORS = """
INSERT INTO content_chunks (id, concept_id, content, embedding)
SELECT g, 1 + g %% 2000, 'Chunk ' || g || ': ' || repeat(md5(g::text), 3),
       ARRAY(SELECT random() FROM generate_series(1, 1536) WHERE g > 0)::vector(1536)
FROM generate_series(%s::bigint, %s::bigint) g
"""
RESPONSES = """
INSERT INTO validation_responses (user_id, prompt_id, score, confidence_level, answer, created_at)
SELECT 1 + (random() * 50000)::int, 1 + g %% 500, random(), 1 + (random() * 4)::int,
       'answer ' || md5(g::text), timestamptz '2025-10-01' + g * interval '1 second'
FROM generate_series(1, %s) g
"""
INDEXES = """
SELECT setval('content_chunks_id_seq', (SELECT max(id) FROM content_chunks));
CREATE INDEX content_chunks_embedding_idx ON content_chunks
    USING hnsw ((binary_quantize(embedding)::bit(1536)) bit_hamming_ops);
CREATE INDEX content_chunks_concept_idx ON content_chunks (concept_id);
CREATE INDEX validation_responses_user_idx ON validation_responses (user_id, created_at);
"""


def database_name(size: Size) -> str:
    return f"bench_{size.name}"


def _spec(size: Size) -> dict[str, Any]:
    return {"v": SPEC_VERSION, "vectors": size.vectors, "responses": size.responses}


def cached_facts(cluster: PgCluster, size: Size) -> dict[str, Any] | None:
    """The facts recorded when this size was generated, or None if it must be (re)made."""
    name = database_name(size)
    if not cluster.database_exists(name):
        return None
    with db.connect(cluster.url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        ).fetchone()
    try:
        facts = json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None
    return facts if facts and facts.get("spec") == _spec(size) else None


def ensure_database(cluster: PgCluster, size: Size, progress=print) -> dict[str, Any]:
    """The generated database for ``size`` (made now unless cached) and its facts."""
    facts = cached_facts(cluster, size)
    if facts:
        facts["cached"] = True
        return facts
    name = database_name(size)
    progress(f"generating {name}: {size.vectors:,} vectors, {size.responses:,} responses")
    cluster.drop_database(name)
    cluster.create_database(name)
    url = cluster.url(name)
    steps: dict[str, float] = {}
    started = time.perf_counter()
    with db.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA.encode())

    def fill(bounds: tuple[int, int]) -> None:
        with db.connect(url, autocommit=True) as part:
            part.execute(VECTORS, bounds)

    t0 = time.perf_counter()
    half = size.vectors // 2
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(fill, [(1, half), (half + 1, size.vectors)]))
    steps["vectors"] = time.perf_counter() - t0
    with db.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute(RESPONSES, (size.responses,))
        steps["responses"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(INDEXES.encode())
        steps["indexes"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        steps["vacuum"] = time.perf_counter() - t0
        steps["hnsw_full_sample"], sample = _full_hnsw_sample(conn, size)
        db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        table_bytes = conn.execute("SELECT pg_total_relation_size('content_chunks')").fetchone()[0]
    facts = {
        "spec": _spec(size),
        "database": name,
        "db_bytes": db_bytes,
        "vector_table_bytes": table_bytes,
        "generation_s": round(time.perf_counter() - started, 1),
        "steps_s": {k: round(v, 1) for k, v in steps.items()},
        "hnsw_sample_rows": sample,
    }
    comment = json.dumps(facts).replace("'", "''")
    cluster.execute(f"COMMENT ON DATABASE {name} IS '{comment}'")
    progress(f"generated {name} ({db_bytes / 1e9:.2f} GB) in {facts['generation_s']} s")
    facts["cached"] = False
    return facts


def _full_hnsw_sample(conn: Any, size: Size) -> tuple[float, int]:
    """Build the production-shaped index (full precision, m=16, ef_construction=64) on a
    sample and drop it: what each restore would add, on both sides, with that index."""
    rows = min(HNSW_SAMPLE, size.vectors)
    conn.execute(
        f"CREATE TABLE hnsw_sample AS SELECT embedding FROM content_chunks ORDER BY id LIMIT {rows}"
    )
    t0 = time.perf_counter()
    conn.execute(
        "CREATE INDEX ON hnsw_sample USING hnsw (embedding vector_cosine_ops) "
        "WITH (m = 16, ef_construction = 64)"
    )
    took = time.perf_counter() - t0
    conn.execute("DROP TABLE hnsw_sample")
    return took, rows
