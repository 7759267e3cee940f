"""Deterministic demo rows for a sandbox database (users, courses, lectures, vectors).

Why: backups, restore verification, vector-dimension checks and the analytics smoke
test need real `vector(1536)` rows.
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime
from typing import Any

from .fixture_facts import EMBEDDING_DIMENSION

_COURSES = [("Gross Anatomy", "ANAT 501"), ("Medical Physiology", "PHYS 502")]
_LECTURES = [
    "Upper Limb: Brachial Plexus",
    "Cardiac Cycle and Pressure-Volume Loops",
    "Thorax: Mediastinum",
    "Renal Physiology: Glomerular Filtration",
    "Lower Limb: Femoral Triangle",
    "Respiratory Mechanics",
    "Head and Neck: Cranial Nerves",
    "Acid-Base Balance",
]
_CONCEPTS = [
    "Brachial plexus",
    "Cardiac output",
    "Stroke volume",
    "Frank-Starling mechanism",
    "Glomerular filtration rate",
    "Renal clearance",
    "Tidal volume",
    "Compliance",
    "Surfactant",
    "Anion gap",
    "Metabolic acidosis",
    "Respiratory alkalosis",
    "Femoral triangle",
    "Inguinal ligament",
    "Mediastinum",
    "Pericardium",
    "Vagus nerve",
    "Facial nerve",
    "Trigeminal nerve",
    "Carpal tunnel",
    "Rotator cuff",
    "Preload",
    "Afterload",
    "Ejection fraction",
    "Baroreceptor reflex",
    "Renin-angiotensin system",
    "Loop of Henle",
    "Countercurrent multiplier",
    "Oxygen dissociation curve",
    "Dead space",
    "Ventilation-perfusion ratio",
    "Henderson-Hasselbalch equation",
    "Bicarbonate buffer",
    "Sciatic nerve",
    "Popliteal fossa",
    "Thoracic duct",
    "Phrenic nerve",
    "Azygos vein",
    "Circle of Willis",
    "Cavernous sinus",
    "Parotid gland",
    "Hypoglossal nerve",
    "Sinoatrial node",
    "Atrioventricular node",
    "Purkinje fibres",
    "Starling forces",
    "Juxtaglomerular apparatus",
    "Aldosterone",
    "Antidiuretic hormone",
    "Haldane effect",
]
_SENTENCES = [
    "The {c} is examined in the context of {l}.",
    "Clinical correlation: injury to the {c} presents with characteristic deficits.",
    "Board-style question stems frequently test the {c} alongside related structures.",
    "Key relationships of the {c} are summarised in the lecture's final table.",
]
_SEED_TIME = datetime(2025, 9, 5, 12, 0, tzinfo=UTC)


@functools.cache
def _concept_vector(key: str) -> str:
    """A concept's vector, drawn from its own key: the same in every database seeded by this
    process (a sandbox seeds two), so it is drawn once."""
    return _unit_vector(random.Random(key), EMBEDDING_DIMENSION)


@functools.cache
def _chunk_draw(key: str) -> tuple[str, str]:
    """A chunk's concept and vector, drawn from its own key (see `_concept_vector`)."""
    rng = random.Random(key)
    concept = _CONCEPTS[rng.randrange(len(_CONCEPTS))]
    return concept, _unit_vector(rng, EMBEDDING_DIMENSION)


def _unit_vector(rng: random.Random, dimension: int) -> str:
    """A random unit vector as pgvector's text literal, short enough to load fast.

    Drawn by numpy from a seed the key's generator gives: deterministic like before, and
    ~1.4 s less of a sandbox start than 250 × 1536 `random.gauss` calls in Python."""
    import numpy

    values = numpy.random.default_rng(rng.getrandbits(64)).standard_normal(dimension)
    values /= float(numpy.linalg.norm(values)) or 1.0
    return "[" + _vector_format(dimension) % tuple(values.tolist()) + "]"


@functools.cache
def _vector_format(dimension: int) -> str:
    """One ``%`` format for a whole vector: a single C-level formatting call per vector."""
    return ",".join(["%.5f"] * dimension)


def seed(
    conn_or_url: Any,
    *,
    chunks: int = 200,
    concepts: int = 50,
    seed: int = 42,
    users: int = 5,
) -> dict[str, int]:
    """Insert deterministic demo rows (users, courses, lectures, objectives, chunks, concepts).

    Why: backups, restore verification, vector-dimension checks and the analytics
    smoke test need real `vector(1536)` rows. Works on the schema of the previous
    release and later. Idempotent (ON CONFLICT DO NOTHING on fixed ids), so a restarted
    sandbox can seed again. Given a URL it connects and commits; given a psycopg
    connection it runs in `conn.transaction()` (the caller commits a non-autocommit
    connection). Returns the number of rows inserted per table.
    """
    import psycopg

    if isinstance(conn_or_url, str):
        with psycopg.connect(conn_or_url) as conn:
            return _seed(conn, chunks, concepts, seed, users)
    return _seed(conn_or_url, chunks, concepts, seed, users)


def _seed(conn: Any, chunks: int, concepts: int, seed: int, users: int) -> dict[str, int]:
    user_rows = [
        (
            f"seed-user-{i:02d}",
            f"learner{i:02d}@americano.example",
            f"Learner {i:02d}",
            _SEED_TIME,
            _SEED_TIME,
        )
        for i in range(1, users + 1)
    ]
    owner = user_rows[0][0]
    course_rows = [
        (f"seed-course-{i:02d}", owner, n, code, _SEED_TIME)
        for i, (n, code) in enumerate(_COURSES, 1)
    ]
    lecture_rows = [
        (
            f"seed-lecture-{i:02d}",
            course_rows[(i - 1) % len(course_rows)][0],
            title,
            f"lecture-{i:02d}.pdf",
            "COMPLETED",
            _SEED_TIME,
        )
        for i, title in enumerate(_LECTURES, 1)
    ]
    objective_rows = [
        (
            f"seed-objective-{i:02d}-{k}",
            lid,
            f"Explain the key concepts of {title.lower()} ({k}).",
            ("BASIC", "INTERMEDIATE", "ADVANCED")[(i + k) % 3],
            k == 1,
            ["USMLE Step 1"],
            _SEED_TIME,
        )
        for i, (lid, _, title, *_rest) in enumerate(lecture_rows, 1)
        for k in (1, 2)
    ]
    concept_rows = []
    for i in range(concepts):
        base = _CONCEPTS[i % len(_CONCEPTS)]
        name = base if i < len(_CONCEPTS) else f"{base} ({i // len(_CONCEPTS) + 1})"
        concept_rows.append(
            (
                f"seed-concept-{i + 1:04d}",
                name,
                f"Definition and clinical relevance of {name.lower()}.",
                "anatomy" if i % 2 else "physiology",
                _concept_vector(f"{seed}:concept:{i}"),
                _SEED_TIME,
            )
        )
    chunk_rows = []
    for i in range(chunks):
        lecture = lecture_rows[i % len(lecture_rows)]
        # row i is the same whatever the counts
        concept, vector = _chunk_draw(f"{seed}:chunk:{i}")
        text = _SENTENCES[i % len(_SENTENCES)].format(c=concept.lower(), l=lecture[2])
        chunk_rows.append(
            (
                f"seed-chunk-{i + 1:05d}",
                lecture[0],
                text,
                vector,
                i // len(lecture_rows),
                1 + i // len(lecture_rows),
                _SEED_TIME,
            )
        )

    counts: dict[str, int] = {}
    with conn.transaction(), conn.cursor() as cur:

        def many(table: str, columns: str, rows: list[tuple]) -> None:
            marks = ", ".join(["%s"] * len(rows[0])) if rows else ""
            total = 0
            for row in rows:
                cur.execute(
                    f'INSERT INTO "{table}" ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING',
                    row,
                )
                total += cur.rowcount
            counts[table] = total

        many("users", '"id", "email", "name", "created_at", "updated_at"', user_rows)
        many("courses", '"id", "user_id", "name", "code", "created_at"', course_rows)
        many(
            "lectures",
            '"id", "course_id", "title", "file_name", "processing_status", "uploaded_at"',
            lecture_rows,
        )
        many(
            "learning_objectives",
            '"id", "lecture_id", "objective", "complexity", "is_high_yield", '
            '"board_exam_tags", "created_at"',
            objective_rows,
        )
        for table, columns, rows in (
            (
                "concepts",
                ["id", "name", "description", "category", "embedding", "created_at"],
                concept_rows,
            ),
            (
                "content_chunks",
                [
                    "id",
                    "lecture_id",
                    "content",
                    "embedding",
                    "chunk_index",
                    "page_number",
                    "created_at",
                ],
                chunk_rows,
            ),
        ):
            counts[table] = _copy_vectors(cur, table, columns, rows)
    return counts


def _copy_vectors(cur: Any, table: str, columns: list[str], rows: list[tuple]) -> int:
    """COPY into a temp table (fast), then insert what is new with vectors cast to 1536 dims."""
    staging = f"_seed_{table}"
    cols = ", ".join(f'"{c}"' for c in columns)
    cur.execute(f"DROP TABLE IF EXISTS pg_temp.{staging}")
    cur.execute(
        f'CREATE TEMP TABLE {staging} AS SELECT {cols} FROM "{table}" WITH NO DATA'.replace(
            '"embedding"', '"embedding"::text AS "embedding"', 1
        )
    )
    with cur.copy(f"COPY {staging} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    select = cols.replace('"embedding"', f'"embedding"::vector({EMBEDDING_DIMENSION})', 1)
    cur.execute(
        f'INSERT INTO "{table}" ({cols}) SELECT {select} FROM {staging} ON CONFLICT DO NOTHING'
    )
    inserted = cur.rowcount
    cur.execute(f"DROP TABLE {staging}")
    return inserted
