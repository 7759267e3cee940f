"""What the application's own sources declare: safety switches, PII redaction, flag defaults.

Pure functions over file text (read at the release tag by the caller), written against the
real Americano files (``logger.ts`` importing ``redactPII`` from
``logger-pii-redaction.ts`` and applying it unless its ``redactPII`` option defaults to
false) and optional ``export const NAME = true|false`` switches. Rate limiters have their
own module, `checkout.ratelimits`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from deploybook.core.checks import Status


def switch(text: str, name: str) -> bool | None:
    """The value of ``export const NAME = true|false``; None when it is not declared."""
    match = re.search(
        rf"^\s*export\s+const\s+{re.escape(name)}\b[^=]*=\s*(true|false)\b", text, re.M
    )
    return None if match is None else match.group(1) == "true"


# `redactPII: false` in a config, or `redactPII: enablePIIRedaction = false` as a default.
_REDACT_OPTION_OFF = re.compile(r"\bredactPII\s*:\s*(?:\w+\s*=\s*)?false\b")


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
        if off := _REDACT_OPTION_OFF.search(logger):
            line = logger.count("\n", 0, off.start()) + 1
            problems.append(
                f"{logger_path} line {line}: `{off.group(0).strip()}` — redaction off by default"
            )
    if problems:
        return Status.FAIL, "PII-redaction logger not in force: " + "; ".join(problems)
    return Status.PASS, (
        f"{logger_path} imports redactPII from {module} and applies it to every entry; "
        "no switch or option turns it off"
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
