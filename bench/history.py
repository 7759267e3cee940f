"""A generated Prisma migration history: tables, indexes, column changes, data updates.

Each table goes through the same eight migrations a real schema sees over a year:
create, seed, add columns, index, backfill, change column types, foreign key, enum column.
Every fourth table carries an ``embedding vector(1536)`` with an HNSW index. The history is
clean on purpose (every migration must pass the dry run): the benchmark measures speed,
the test suite measures the trouble cases.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

STEPS_PER_TABLE = 8
VECTOR_ROWS = 200  # rows with random vectors in each vector table (HNSW builds cost)


def _create(t: str, i: int, rows: int) -> str:
    ext = 'CREATE EXTENSION IF NOT EXISTS "vector";\n\n' if i == 0 else ""
    vec = ',\n    "embedding" vector(1536)' if i % 4 == 0 else ""
    return (
        f'{ext}-- CreateTable\nCREATE TABLE "{t}" (\n    "id" SERIAL NOT NULL,\n'
        '    "name" TEXT NOT NULL,\n    "score" DOUBLE PRECISION,\n'
        '    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP'
        f'{vec},\n\n    CONSTRAINT "{t}_pkey" PRIMARY KEY ("id")\n);\n'
    )


def _seed(t: str, i: int, rows: int) -> str:
    sql = (
        f'INSERT INTO "{t}" ("name", "score", "created_at")\n'
        f"SELECT 'item ' || g, random(), timestamp '2025-01-01' + g * interval '1 minute'\n"
        f"FROM generate_series(1, {rows}) g;\n"
    )
    if i % 4 == 0:
        sql += (
            f'\nUPDATE "{t}" SET "embedding" = ARRAY(SELECT random() FROM '
            f'generate_series(1, 1536) WHERE "id" > 0)::vector(1536) WHERE "id" <= {VECTOR_ROWS};\n'
        )
    return sql


def _add_columns(t: str, i: int, rows: int) -> str:
    return (
        f'-- AlterTable\nALTER TABLE "{t}" ADD COLUMN "status" TEXT NOT NULL DEFAULT \'new\',\n'
        'ADD COLUMN "owner_id" INTEGER,\nADD COLUMN "updated_at" TIMESTAMP(3);\n'
    )


def _indexes(t: str, i: int, rows: int) -> str:
    sql = (
        f'-- CreateIndex\nCREATE INDEX "{t}_name_idx" ON "{t}"("name");\n\n'
        f'-- CreateIndex\nCREATE INDEX "{t}_status_created_at_idx" ON "{t}"'
        '("status", "created_at");\n'
    )
    if i % 4 == 0:
        sql += (
            f'\nCREATE INDEX "{t}_embedding_idx" ON "{t}" USING hnsw '
            '("embedding" vector_cosine_ops) WITH (m = 16, ef_construction = 64);\n'
        )
    return sql


def _backfill(t: str, i: int, rows: int) -> str:
    return (
        f'UPDATE "{t}" SET "status" = CASE WHEN "score" > 0.5 THEN \'active\' ELSE \'idle\' END,\n'
        '    "owner_id" = 1 + "id" % 100,\n    "updated_at" = "created_at" + interval \'1 day\';\n'
    )


def _change_types(t: str, i: int, rows: int) -> str:
    return (
        f'-- AlterTable\nALTER TABLE "{t}" ALTER COLUMN "score" SET DATA TYPE DECIMAL(10,4),\n'
        'ALTER COLUMN "owner_id" SET NOT NULL;\n\n'
        f'ALTER TABLE "{t}" RENAME COLUMN "name" TO "title";\n\n'
        f'ALTER INDEX "{t}_name_idx" RENAME TO "{t}_title_idx";\n'
    )


def _foreign_key(t: str, i: int, rows: int) -> str:
    if i == 0:
        return f'-- AlterTable\nALTER TABLE "{t}" ALTER COLUMN "status" SET DEFAULT \'idle\';\n'
    prev = table_name(i - 1)
    return (
        f'-- AddForeignKey\nALTER TABLE "{t}" ADD CONSTRAINT "{t}_owner_id_fkey" FOREIGN KEY '
        f'("owner_id") REFERENCES "{prev}"("id") ON DELETE RESTRICT ON UPDATE CASCADE;\n'
    )


def _enum_column(t: str, i: int, rows: int) -> str:
    return (
        f'-- CreateEnum\nCREATE TYPE "{t}_kind" AS ENUM '
        "('BASIC', 'INTERMEDIATE', 'ADVANCED');\n\n"
        f'-- AlterTable\nALTER TABLE "{t}" ADD COLUMN "kind" "{t}_kind" NOT NULL '
        "DEFAULT 'BASIC';\n\n"
        f'UPDATE "{t}" SET "kind" = \'ADVANCED\' WHERE "score" > 0.9;\n'
    )


STEPS: list[tuple[str, Callable[[str, int, int], str]]] = [
    ("create", _create),
    ("seed", _seed),
    ("add_columns", _add_columns),
    ("indexes", _indexes),
    ("backfill", _backfill),
    ("change_types", _change_types),
    ("foreign_key", _foreign_key),
    ("enum_column", _enum_column),
]


def table_name(i: int) -> str:
    return f"bench_t{i:03d}_items"


def write_history(folder: Path, count: int, rows: int) -> list[Path]:
    """Write ``count`` migration folders (timestamped, Prisma layout) into ``folder``.

    Tables are interleaved (step s of every table, then step s+1) the way a real history
    mixes features, so foreign keys always point at a table created earlier.
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "migration_lock.toml").write_text('provider = "postgresql"\n')
    tables = max(1, -(-count // STEPS_PER_TABLE))
    plan = [(s, i) for s in range(STEPS_PER_TABLE) for i in range(tables)][:count]
    start = datetime(2025, 1, 6, 9, 0, 0)
    written = []
    for n, (s, i) in enumerate(plan):
        label, make = STEPS[s]
        stamp = (start + timedelta(hours=7 * n)).strftime("%Y%m%d%H%M%S")
        path = folder / f"{stamp}_{label}_t{i:03d}" / "migration.sql"
        path.parent.mkdir()
        path.write_text(make(table_name(i), i, rows))
        written.append(path)
    return written
