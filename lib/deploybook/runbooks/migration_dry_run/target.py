"""Where 02's dry run runs: the verified scratch copy (one restore, not two), or live.

The restore verification above restores the fresh snapshot into a scratch database and
proves it equal to the source (tables, exact row counts, extensions, vectors, migrations
rows, sequences). That copy is exactly what the dry run needs — a full-size copy of the
target, touched by no traffic — so it is kept for the dry run, which drops it afterwards
(unless ``keep_scratch``). Only when there is no verified copy does the dry run restore one
of its own. The record says which: the "dry run target" check and the impact scrap.
"""

from __future__ import annotations

from typing import Any

from deploybook.core.checks import Check, Checks, Status
from deploybook.errors import ConfigError
from deploybook.session.runbook import Runbook

SECTION = "7"
VERIFIED_COPY = "verified copy kept for the dry run"


def dry_run_target(run: Runbook, requested: str = "") -> str:
    """ "scratch" (the default in every environment) or "live": the parameter, else params.
    Live is refused in a production-role environment unless params set
    ``database.allow_live_dry_run`` (ConfigError naming the setting and the fix)."""
    spec = run.params.database
    target = requested or spec.dry_run_target or "scratch"
    setting = "dry_run_target (runbook parameter)" if requested else "database.dry_run_target"
    if target not in ("scratch", "live"):
        raise ConfigError(f"{setting} {target!r}: expected 'scratch' or 'live'")
    if target == "live" and run.params.environment.is_production and not spec.allow_live_dry_run:
        raise ConfigError(
            f"{setting} 'live' is refused in production environment {run.env!r}: every pending "
            "migration would run in one transaction on the live database, holding each lock it "
            "takes (ACCESS EXCLUSIVE for most DDL) until the dry run ends while production "
            "traffic waits. Leave dry_run_target unset (a scratch restore of the fresh "
            "snapshot), or set `database.allow_live_dry_run: true` in the params file to "
            "accept that cost"
        )
    return target


def wants_copy(run: Runbook, requested: str = "") -> bool:
    """Whether the dry run will run on a scratch copy (a refused target: no)."""
    try:
        return dry_run_target(run, requested) == "scratch"
    except ConfigError:
        return False


def target_check(run: Runbook, where: str, evidence: str, data: Any = None) -> Check:
    if where == "live" and run.params.environment.is_production:
        return Check(
            "dry run target",
            SECTION,
            Status.WARN,
            "live production database, allowed by database.allow_live_dry_run: every lock the "
            "pending migrations take is held until the dry run ends (hold times below)",
            critical=False,
            data=data,
        )
    return Check("dry run target", SECTION, Status.PASS, evidence, critical=False, data=data)


def kept_check(scratch: str, sha256: str, keep: bool) -> Check:
    """The verified copy is kept: the dry run below runs on it (and drops it unless keep)."""
    then = "keeps it (keep_scratch)" if keep else "then drops it"
    return Check(
        VERIFIED_COPY,
        SECTION,
        Status.PASS,
        f"{scratch} is proven equal to the source: the dry run below runs on it (one restore, "
        f"not two) and {then}",
        critical=False,
        data={"scratch": scratch, "sha256": sha256, "keep": keep},
    )


def verified_copy(checks: Checks, sha256: str) -> dict[str, Any] | None:
    """The kept verified copy of the snapshot ``sha256`` recorded above, if any."""
    for c in reversed(checks):
        if c.name == VERIFIED_COPY and isinstance(c.data, dict) and c.data.get("sha256") == sha256:
            return c.data
    return None
