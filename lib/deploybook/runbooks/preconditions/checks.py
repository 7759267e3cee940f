"""The checks of runbook 01: plan sections 6 and 10 (1, 2, 5 and 8 are in `release`, 3 and 9
in `environments`, the test results of 6 in `testresults`).

Each function takes the validated params plus the run's values (release, previous
release, attestation) and returns `Checks`; `cells` records them on the run. Files are
read at the release tag (what ships), through `deploybook.systems.git`; parsing and
judging live in pure modules (`statusfile`, `junit`, `appsource`, `parity`, `release`)
that tests call directly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deploybook.checkout import ratelimits, statusfile
from deploybook.checkout import sources as appsource
from deploybook.config import Params
from deploybook.core.checks import Check, Checks, Status, run_check
from deploybook.core.secrets import register
from deploybook.core.urlcheck import url_message
from deploybook.errors import ConfigError
from deploybook.runbooks.preconditions import parity
from deploybook.systems import git as repo
from deploybook.systems.workdir import run_in_checkout

__all__ = [
    "checklist",
    "embedding_decision",
    "epic_done",
    "health_endpoints",
    "rate_limits_reviewed",
    "secrets_configured",
]

_PLACEHOLDER = re.compile(
    r"(your[_-].*[_-]here|changeme|change[_-]me|placeholder|<[^>]+>|^x{3,}$|^\.\.\.$|example\.com|^todo$|^dummy$)",
    re.IGNORECASE,
)
# What a well-formed value looks like, for the secrets whose form is known.
_FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "DATABASE_URL": (re.compile(r"^postgres(ql)?://[^\s]+$"), "a postgres:// URL"),
    "CHATMOCK_URL": (re.compile(r"^https?://[^\s]+$"), "an http(s) URL"),
    "REDIS_URL": (re.compile(r"^rediss?://[^\s]+$"), "a redis:// URL"),
}
_NOT_A_NAME = {"", "-", "tbd", "todo", "n/a", "na", "none", "null", "?", "xxx", "nobody"}
_SEVERITY = {Status.PASS: 0, Status.SKIP: 1, Status.WARN: 2, Status.FAIL: 3}


def _worst(*statuses: Status) -> Status:
    return max(statuses, key=_SEVERITY.__getitem__)


def _at_tag(params: Params, release: str, rel: str) -> str | None:
    """A file's text at the release tag (None if absent); a missing tag is a clear error."""
    if not repo.tag_exists(params.checkout.path, release):
        raise ConfigError(f"tag {release} does not exist in {params.checkout.path}")
    return repo.read_at(params.checkout.path, release, rel)


# --- section 6: epic done -------------------------------------------------------------------


def epic_done(params: Params, release: str) -> Checks:
    """Plan section 6: every story of the epic is in the status file's Done table."""
    epic, where = params.epic, params.checkout.status_file

    def probe() -> tuple[Status, str]:
        text = _at_tag(params, release, where)
        if text is None:
            return Status.FAIL, f"status file {where} does not exist at {release}"
        return statusfile.judge_epic(text, epic.id, epic.stories, f"{where}@{release}")

    return Checks([run_check(f"Epic {epic.id} stories all DONE", "6", probe)])


def embedding_decision(params: Params, release: str) -> Checks:
    """Plan section 6: the decisions log records the embedding dimension (non-critical)."""
    where, dimension = params.checkout.status_file, params.epic.embedding_dimension

    def probe() -> tuple[Status, str]:
        text = _at_tag(params, release, where)
        if text is None:
            return Status.WARN, f"status file {where} does not exist at {release}"
        return statusfile.judge_embedding_decision(text, dimension, f"{where}@{release}")

    name = f"embedding dimension {dimension} decision recorded"
    return Checks([run_check(name, "6", probe, critical=False)])


# --- section 6: secrets and rate limits -------------------------------------------------------


def env_example_values(checkout: Path, files: list[str]) -> dict[str, set[str]]:
    """Values each ``.env.example`` gives per key: these are placeholders, never secrets."""
    values: dict[str, set[str]] = {}
    for rel in files:
        path = checkout / rel
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            value = value.strip().strip("'\"")
            if value:
                values.setdefault(key.strip().removeprefix("export "), set()).add(value)
    return values


def judge_secret(name: str, value: str | None, placeholders: set[str]) -> tuple[Status, str]:
    """set / missing / placeholder / malformed — the verdict never contains the value."""
    if value is None:
        return Status.FAIL, f"{name} is missing: export it in the environment that runs deploybook"
    if not value.strip():
        return Status.FAIL, f"{name} is set but empty"
    if value in placeholders or _PLACEHOLDER.search(value):
        return Status.FAIL, f"{name} holds a placeholder copied from .env.example, not a real value"
    broken = url_message(name, value) if "://" in value else None
    if broken:
        return Status.FAIL, broken.replace(" is not a valid URL", " is malformed: not a valid URL")
    form = _FORMS.get(name)
    if form and not form[0].match(value):
        return Status.FAIL, f"{name} is malformed: expected {form[1]}"
    return Status.PASS, f"{name} is set ({len(value)} characters, value not shown)"


def secrets_configured(params: Params, environ: Mapping[str, str] | None = None) -> Checks:
    """Plan section 6: each required secret is set, real and well-formed.

    A sandbox environment's variables are the running stack's (as its params file's are).
    """
    environ = parity.environment_values(params, environ)
    examples = env_example_values(params.checkout.path, params.checkout.env_examples)
    checks = Checks()
    for name in dict.fromkeys([params.database.url_env, *params.secrets]):
        started = time.monotonic()
        value = environ.get(name)
        register(value)
        status, evidence = judge_secret(name, value, examples.get(name, set()))
        checks.append(
            Check(
                f"secret {name} configured", "6", status, evidence, True, time.monotonic() - started
            )
        )
    return checks


def rate_limits_reviewed(
    params: Params, reviewed_by: str | None, release: str, production: bool | None = None
) -> Checks:
    """Plan section 6: a named reviewer attests the limits, shown beside the provider quotas.

    A missing attestation fails in the production role and warns elsewhere; a limit above
    the provider's quota fails everywhere.
    """
    production = params.environment.is_production if production is None else production
    where = params.checkout.rate_limiter

    def probe() -> tuple[Status, str, Any]:
        text = _at_tag(params, release, where)
        if text is None:
            return Status.FAIL, f"{where} does not exist at {release}: no limits to review"
        found = ratelimits.limiters(text)
        if not found:
            return Status.FAIL, f"{where} declares no rate limiters at {release}: nothing to review"
        result = ratelimits.review(found, params.preconditions.provider_quotas)
        quota_status, lines, rows = result.status, result.lines, result.rows
        reviewer = " ".join(str(reviewed_by or "").split())
        if reviewer.casefold() in _NOT_A_NAME:
            attestation = Status.FAIL if production else Status.WARN
            head = (
                "no reviewer named: pass rate_limits_reviewed_by='<name>' once the limits below "
                "are checked against the provider consoles"
                + (" (required in production)" if production else "")
            )
        else:
            attestation, head = Status.PASS, f"reviewed by {reviewer}"
        status = _worst(attestation, quota_status)
        if result.unguarded and attestation is not Status.FAIL:
            head = f"no rate limiter guards {', '.join(result.unguarded)} ({head})"
        elif quota_status is Status.FAIL and attestation is not Status.FAIL:
            head = f"a limit exceeds its provider quota ({head})"
        return status, "\n".join([head, f"limits in {where}@{release}:", *lines]), rows

    return Checks([run_check("external rate limits reviewed", "6", probe)])


# --- section 10: the pre-deploy checklist -----------------------------------------------------


def checklist(params: Params, release: str) -> Checks:
    """Plan section 10: CI green (when a CI command is configured), rate-limit guard,
    PII-redaction logger, and feature-flag defaults."""
    checkout, spec = params.checkout, params.preconditions
    checks = Checks()
    if spec.ci_command:

        def ci_probe() -> tuple[Status, str]:
            commit = repo.commit_sha(checkout.path, release)
            result = run_in_checkout(
                "ci_command",
                spec.ci_command,
                {"release": release, "commit": commit},
                checkout=checkout.path,
                timeout_s=120,
                check=False,
            )
            tail = (result.stdout.strip() or result.stderr.strip()).splitlines()[-3:]
            status = Status.PASS if result.ok else Status.FAIL
            verdict = "green" if result.ok else "NOT green"
            return status, "\n".join(
                [f"CI {verdict} for {release} ({commit[:10]}): {result.summary()}", *tail]
            )

        checks.append(run_check("CI green for the release commit", "10", ci_probe))

    def guard_probe() -> tuple[Status, str]:
        text = _at_tag(params, release, checkout.rate_limiter)
        where = f"{checkout.rate_limiter}@{release}"
        switch = appsource.switch(text, "RATE_LIMIT_ENABLED") if text is not None else None
        return ratelimits.judge_guard(text, where, switch)

    def redaction_probe() -> tuple[Status, str]:
        logger = _at_tag(params, release, checkout.logger)
        redaction = _at_tag(params, release, checkout.pii_redaction)
        return appsource.judge_redaction(logger, redaction, checkout.logger, checkout.pii_redaction)

    def flags_probe() -> tuple[Status, str]:
        if not spec.feature_flags and not spec.feature_flags_source:
            return Status.SKIP, "no feature flags configured (preconditions.feature_flags)"
        if not spec.feature_flags_source:
            return Status.FAIL, "preconditions.feature_flags_source is not set: nothing to compare"
        where = spec.feature_flags_source
        text = _at_tag(params, release, where)
        if text is None:
            return Status.FAIL, f"{where} does not exist at {release}"
        declared = appsource.flag_defaults(text, where)
        return appsource.judge_flags(declared, spec.feature_flags, f"{where}@{release}")

    checks.append(run_check("rate-limit guard present and enabled", "10", guard_probe))
    checks.append(run_check("PII-redaction logger present and enabled", "10", redaction_probe))
    checks.append(run_check("feature flag defaults match params", "10", flags_probe))
    return checks


def health_endpoints(params: Params, expect_version: str | None = None) -> Checks:
    """Plan section 10: every service's health endpoint answers (and, optionally, its version)."""
    from deploybook.systems.http import check_health

    return Checks(
        check_health(
            f"{svc.name} health endpoint answering",
            svc.base_url + svc.health_path,
            section="10",
            expect_version=expect_version,
        )
        for svc in params.services
    )
