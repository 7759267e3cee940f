"""Scratch database names: valid identifiers, unique however long the environment name.

PostgreSQL cuts identifiers at 63 bytes. Cutting ``deploybook_scratch_<env>_<stamp>`` made
the verify and dry-run scratch names of a long environment name the same database, so
one step dropped what the other had kept. A name that would not fit keeps its readable
head and ends in a hash of the whole name instead.
"""

from __future__ import annotations

import hashlib
import re

PG_IDENTIFIER_MAX = 63
PREFIX = "deploybook_scratch_"
_HASH_CHARS = 12


def identifier(text: str) -> str:
    """``text`` as a lowercase identifier of ``[a-z0-9_]`` (the default scratch pattern)."""
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def scratch_name(env: str, stamp: str, purpose: str = "") -> str:
    """``deploybook_scratch_<env>_<stamp>[<purpose>]``; over 63 characters, its head plus a
    hash of the whole name, so two different names never become one."""
    full = identifier(f"{PREFIX}{env}_{stamp}{purpose}")
    if len(full) <= PG_IDENTIFIER_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_HASH_CHARS]
    return f"{full[: PG_IDENTIFIER_MAX - _HASH_CHARS - 1]}_{digest}"
