"""Plan section 10: the target database answers, and which PostgreSQL it is.

Every later runbook needs the database (02 dumps it, 03 migrates it, 05 restores it): a
release whose preconditions pass with PostgreSQL down would only fail later, mid-change.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from deploybook.core.checks import Check, Checks, Status
from deploybook.errors import DeploybookError
from deploybook.systems.postgres import db

SECTION = "10"
NAME = "database reachable"


def database_reachable(url_of: Callable[[], str], timeout_s: int = 5) -> Checks:
    """Connect to the target database and report its server version (a critical check).

    ``url_of`` returns the URL (it raises `SecretMissing` when the variable is unset, which
    fails this check by name rather than the cell).
    """
    started = time.monotonic()
    try:
        url = url_of()
        with db.connect(url, autocommit=True, timeout=timeout_s) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            data = {"server_version": str(version), "server_version_num": conn.info.server_version}
        status, evidence = Status.PASS, f"{db.describe(url)} answered: PostgreSQL {version}"
    except DeploybookError as exc:
        status, evidence, data = Status.FAIL, f"{exc}", None
    took = time.monotonic() - started
    return Checks([Check(NAME, SECTION, status, evidence, True, took, data)])
