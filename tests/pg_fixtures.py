"""Shared pytest fixtures: one embedded PostgreSQL 18 (+pgvector) per test session and a
fresh database per test. Loaded as a plugin (``pytest_plugins = ["pg_fixtures"]``).

A real server, not a mock: the runbooks' promises (restore verification, dry-run
harmlessness, Prisma-compatible rows, advisory locks) are only worth testing for real.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploybook.sandbox.postgres import PgCluster
from deploybook.systems.postgres import db


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """A running cluster on 127.0.0.1 with a random superuser password (SCRAM)."""
    cluster = PgCluster(tmp_path_factory.mktemp("pg") / "data")
    cluster.init(secrets.token_urlsafe(18))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_bin(pg_cluster: PgCluster) -> Path:
    """The bundled pg_dump/pg_restore/psql (PATH may hold an older pg_dump)."""
    return PgCluster.bin_dir()


@pytest.fixture
def pg_db(pg_cluster: PgCluster) -> Iterator[str]:
    """URL of a fresh database with the vector extension; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(name)
    url = pg_cluster.url(name)
    with db.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    try:
        yield url
    finally:
        pg_cluster.drop_database(name)


def run_sql(url: str, script: str) -> None:
    """Run a multi-statement script in autocommit (test setup)."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute(script.encode())
