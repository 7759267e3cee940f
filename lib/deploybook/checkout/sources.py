"""What the application's own sources declare: rate limits, safety switches, flag defaults.

Pure functions over file text (read at the release tag by the caller). The layouts are the
Americano ones documented in `deploybook.sandbox.fixture`: one
``export const <PROVIDER>_RATE_LIMIT: RateLimitConfig = { key: 123, ... }`` block per
provider, ``export const RATE_LIMIT_ENABLED = true`` style switches, and a logger that
imports and applies the PII redaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from deploybook.core.checks import Status

_LIMIT_BLOCK = re.compile(r"export const (\w+)_RATE_LIMIT\b[^=]*=\s*\{(.*?)\}", re.S)
_LIMIT_ENTRY = re.compile(r"(\w+):\s*(\d[\d_]*)")


def rate_limits(text: str) -> dict[str, dict[str, int]]:
    """Provider -> limit key -> value, from the rate limiter's exported config blocks."""
    return {
        match.group(1).upper(): {
            key: int(value.replace("_", "")) for key, value in _LIMIT_ENTRY.findall(match.group(2))
        }
        for match in _LIMIT_BLOCK.finditer(text)
    }


def switch(text: str, name: str) -> bool | None:
    """The value of ``export const NAME = true|false``; None when it is not declared."""
    match = re.search(
        rf"^\s*export\s+const\s+{re.escape(name)}\b[^=]*=\s*(true|false)\b", text, re.M
    )
    return None if match is None else match.group(1) == "true"


def judge_quotas(
    limits: Mapping[str, Mapping[str, int]], quotas: Mapping[str, Mapping[str, int]]
) -> tuple[Status, list[str], list[dict[str, object]]]:
    """Each configured limit beside the provider's quota; a limit above its quota fails.

    Returns (status, evidence lines, table rows). A provider with a quota but no limiter
    block fails (its calls are not limited); a limiter without a configured quota warns.
    """
    status, lines, rows = Status.PASS, [], []
    for provider in sorted(set(limits) | set(quotas)):
        mine, theirs = limits.get(provider), quotas.get(provider)
        if mine is None:
            status = Status.FAIL
            lines.append(f"{provider}: a quota is configured but the rate limiter has no block")
            continue
        if theirs is None:
            status = Status.WARN if status is Status.PASS else status
            lines.append(f"{provider}: no provider quota configured in params to compare with")
        for key, value in mine.items():
            quota = (theirs or {}).get(key)
            over = quota is not None and value > quota
            if over:
                status = Status.FAIL
            verdict = "OVER QUOTA" if over else ("ok" if quota is not None else "no quota")
            rows.append(
                {
                    "provider": provider,
                    "limit": key,
                    "limiter": value,
                    "quota": quota,
                    "ok": not over,
                }
            )
            lines.append(
                f"{provider} {key}: limiter {value}"
                + (f" / quota {quota}" if quota is not None else "")
                + f" — {verdict}"
            )
        for key in sorted(set(theirs or {}) - set(mine)):
            lines.append(f"{provider} {key}: quota {theirs[key]} but the limiter sets no {key}")
    return status, lines, rows


def judge_guard(text: str | None, where: str) -> tuple[Status, str]:
    """The rate-limit guard exists at the tag, declares its limits and is switched on."""
    if text is None:
        return (
            Status.FAIL,
            f"{where} does not exist at the release tag: the rate-limit guard is gone",
        )
    enabled = switch(text, "RATE_LIMIT_ENABLED")
    providers = sorted(rate_limits(text))
    if enabled is False:
        return Status.FAIL, f"{where}: RATE_LIMIT_ENABLED = false — the guard is switched off"
    if not providers:
        return Status.FAIL, f"{where} declares no <PROVIDER>_RATE_LIMIT blocks"
    state = "RATE_LIMIT_ENABLED = true" if enabled else "no RATE_LIMIT_ENABLED switch (always on)"
    return Status.PASS, f"{where}: {state}; limits for {', '.join(providers)}"


def judge_redaction(
    logger: str | None, redaction: str | None, logger_path: str, redaction_path: str
) -> tuple[Status, str]:
    """The PII redaction exists, the logger imports and applies it, and it is switched on."""
    problems = []
    module = redaction_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if redaction is None:
        problems.append(f"{redaction_path} does not exist at the release tag")
    elif "redactPII" not in redaction:
        problems.append(f"{redaction_path} defines no redactPII")
    if logger is None:
        problems.append(f"{logger_path} does not exist at the release tag")
    else:
        if not re.search(
            rf"import\s*\{{[^}}]*\bredactPII\b[^}}]*\}}\s*from\s*['\"][./]*{re.escape(module)}['\"]",
            logger,
        ):
            problems.append(f"{logger_path} does not import redactPII from {module}")
        if not re.search(r"\bredactPII\s*\(", logger):
            problems.append(f"{logger_path} never calls redactPII(...)")
        if switch(logger, "PII_REDACTION_ENABLED") is False:
            problems.append(
                f"{logger_path}: PII_REDACTION_ENABLED = false — redaction switched off"
            )
    if problems:
        return Status.FAIL, "PII-redaction logger not in force: " + "; ".join(problems)
    return Status.PASS, (
        f"{logger_path} imports redactPII from {module} and applies it to every entry; "
        "PII_REDACTION_ENABLED is not false"
    )


def flag_defaults(text: str, path: str) -> dict[str, bool]:
    """Flag -> default, from a JSON object, a TS/JS ``name: true`` map, or a markdown note.

    The markdown form is the implementation guide's "Feature flags: `a`, `b` default off".
    """
    if path.endswith(".json"):
        data = json.loads(text)
        data = data.get("flags", data) if isinstance(data, dict) else {}
        return {str(k): bool(v) for k, v in data.items() if isinstance(v, bool)}
    if path.endswith((".ts", ".tsx", ".js", ".mjs")):
        return {k: v == "true" for k, v in re.findall(r"\b(\w+)\s*[:=]\s*(true|false)\b", text)}
    flags: dict[str, bool] = {}
    for match in re.finditer(
        r"feature flags?\s*:(.*?)(?:\n\s*\n|\n\s*[-*#]|\Z)", text, re.I | re.S
    ):
        note = match.group(1)
        default = re.search(
            r"default(?:s)?\s*(?:to\s*)?(on|off|true|false|enabled|disabled)", note, re.I
        )
        if default is None:
            continue
        value = default.group(1).lower() in ("on", "true", "enabled")
        flags.update({name: value for name in re.findall(r"`([\w.-]+)`", note)})
    return flags


def judge_flags(
    declared: Mapping[str, bool], expected: Mapping[str, bool], where: str
) -> tuple[Status, str]:
    """Every flag params expects is declared with that default, and none is left over."""

    def word(value: bool) -> str:
        return "on" if value else "off"

    problems = []
    for name, value in expected.items():
        if name not in declared:
            problems.append(f"{name}: expected default {word(value)}, not declared in {where}")
        elif declared[name] != value:
            problems.append(
                f"{name}: {where} declares default {word(declared[name])}, "
                f"params expect {word(value)}"
            )
    extra = sorted(set(declared) - set(expected))
    if extra:
        problems.append(f"declared in {where} but not in params: {', '.join(extra)}")
    table = [f"{n}: default {word(v)}" for n, v in sorted(declared.items())]
    if problems:
        return Status.FAIL, "\n".join(
            [f"feature flag defaults differ from params: {problems[0]}", *problems[1:], *table]
        )
    return Status.PASS, "\n".join(
        [
            f"{len(expected)} feature flag(s) declared in {where} with the defaults params expect",
            *table,
        ]
    )
