"""Checks of runbook 01 that need no database: secrets, health endpoints.

Each function returns `Checks`; parsing and judging are pure functions over text and
mappings, so tests call them directly.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from .checks import Check, Checks, Status
from .config import Params
from .secrets import register

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
    form = _FORMS.get(name)
    if form and not form[0].match(value):
        return Status.FAIL, f"{name} is malformed: expected {form[1]}"
    return Status.PASS, f"{name} is set ({len(value)} characters, value not shown)"


def secrets_configured(params: Params, environ: Mapping[str, str] | None = None) -> Checks:
    """Plan section 6: each required secret is set, real and well-formed."""
    environ = os.environ if environ is None else environ
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


def health_endpoints(params: Params, expect_version: str | None = None) -> Checks:
    """Plan section 10: every service's health endpoint answers (and, optionally, its version)."""
    from .http import check_health

    return Checks(
        check_health(
            svc.name, svc.base_url + svc.health_path, section="10", expect_version=expect_version
        )
        for svc in params.services
    )
