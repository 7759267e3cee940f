"""Rate limiters as an application's source declares them, beside the providers' quotas.

Pure functions over file text (read at the release tag by the caller). Two shapes are
understood, because both occur in real code:
- instances of a limiter class with an options object, as in Americano's
  ``rate-limiter.ts``: ``export const searchRateLimiter = new RateLimiter({ maxRequests:
  60, windowMs: 60000, keyPrefix: 'search' })`` — N requests per window;
- exported configuration objects whose name says rate limit, e.g. ``export const
  GEMINI_RATE_LIMIT = { requestsPerMinute: 60, requestsPerDay: 1500 }``.

A limiter guards a provider when the provider's name (a key of params'
``provider_quotas``, e.g. GEMINI) is in the limiter's name or one of its string options
(``keyPrefix: 'gemini'``). The review then says, per provider and quota, which limiter
bounds it and by how much — and plainly which providers have no guard at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from deploybook.core.checks import Status

_INSTANCE = re.compile(
    r"(?:export\s+)?(?:const|let|var)\s+(?P<name>\w+)\s*(?::[^=]+)?=\s*new\s+"
    r"(?P<cls>\w*Limit\w*)\s*\(\s*\{(?P<body>.*?)\}\s*\)",
    re.S | re.I,
)
_CONFIG = re.compile(
    r"(?:export\s+)?const\s+(?P<name>\w*rate_?limit\w*)\s*(?::[^=]+)?=\s*\{(?P<body>[^{}]*)\}",
    re.S | re.I,
)
_NUMBER_OPTION = re.compile(r"(\w+)\s*:\s*([\d_]+(?:\s*\*\s*[\d_]+)*)\s*(?=[,}\n/]|$)")
_STRING_OPTION = re.compile(r"(\w+)\s*:\s*['\"`]([^'\"`]*)['\"`]")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_PERIODS_MS = {"second": 1_000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


def _number(expr: str) -> int:
    value = 1
    for part in expr.split("*"):
        value *= int(part.strip().replace("_", ""))
    return value


@dataclass(frozen=True)
class Limiter:
    """One declared limiter: its name, numeric and string options, and where it is."""

    name: str
    line: int
    numbers: dict[str, int] = field(default_factory=dict)
    strings: dict[str, str] = field(default_factory=dict)
    kind: str = "instance"  # "instance" (new X({...})) or "config" (an exported object)

    def guards(self, provider: str) -> bool:
        words = [self.name, *self.strings.values()]
        return any(provider.lower() in w.lower() for w in words)

    def bound(self, quota_key: str) -> int | None:
        """The most this limiter lets through per the quota's period, if it bounds it.

        ``requestsPerMinute`` etc. are read directly from a config object. A windowed
        limiter (N per ``windowMs``) lets through N per window: over a longer period P that
        is N·P/window, over a shorter one still N (all at once).
        """
        if quota_key in self.numbers:
            return self.numbers[quota_key]
        period = _period_ms(quota_key)
        count, window = self.numbers.get("maxRequests"), self.numbers.get("windowMs")
        if period is None or not quota_key.lower().startswith("requests") or not count:
            return None
        if not window:
            return None
        return count * max(1, period // window)

    def describe(self) -> str:
        if "maxRequests" in self.numbers and "windowMs" in self.numbers:
            text = f"{self.numbers['maxRequests']} requests / {_window(self.numbers['windowMs'])}"
        else:
            text = ", ".join(f"{k} {v}" for k, v in self.numbers.items()) or "no numeric limits"
        extra = ", ".join(f"{k} '{v}'" for k, v in self.strings.items())
        return f"{self.name} (line {self.line}): {text}" + (f" ({extra})" if extra else "")


def _period_ms(quota_key: str) -> int | None:
    match = re.search(r"per(second|minute|hour|day)$", quota_key, re.I)
    return _PERIODS_MS[match.group(1).lower()] if match else None


def _window(ms: int) -> str:
    for unit, size in sorted(_PERIODS_MS.items(), key=lambda kv: -kv[1]):
        if ms % size == 0:
            n = ms // size
            return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
    return f"{ms} ms"


def _blank_comments(text: str) -> str:
    """Comments replaced by spaces (newlines kept): a JSDoc example is not a limiter."""
    return _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def limiters(text: str) -> list[Limiter]:
    """Every limiter instance and rate-limit config object the file declares, in order."""
    text = _blank_comments(text)
    found: list[Limiter] = []
    for pattern, kind in ((_INSTANCE, "instance"), (_CONFIG, "config")):
        for match in pattern.finditer(text):
            if kind == "config" and re.match(r"\s*new\b", text[match.end("name") :]):
                continue
            body = match.group("body")
            numbers = {k: _number(v) for k, v in _NUMBER_OPTION.findall(body)}
            strings = dict(_STRING_OPTION.findall(body))
            if not numbers:
                continue
            line = text.count("\n", 0, match.start("name")) + 1
            found.append(Limiter(match.group("name"), line, numbers, strings, kind))
    return sorted(found, key=lambda limiter: limiter.line)


@dataclass
class Review:
    """Per provider quota: the bound the guarding limiters give, and the verdict."""

    status: Status
    lines: list[str]
    rows: list[dict[str, object]]
    unguarded: list[str]


def review(found: list[Limiter], quotas: Mapping[str, Mapping[str, int]]) -> Review:
    """Each provider quota beside the limiters that guard it.

    A provider with a quota and no limiter at all fails (nothing keeps its calls under
    the quota); a limiter that lets more through than a quota allows fails; a quota no
    limiter bounds (e.g. tokens per minute) is shown, not failed.
    """
    status, lines, rows, unguarded = Status.PASS, [], [], []
    lines.append(f"{len(found)} limiter(s) declared:")
    lines += [
        f"  {lim.describe()}"
        + ("" if any(lim.guards(p) for p in quotas) else " — guards no provider in params")
        for lim in found
    ]
    for provider in sorted(quotas):
        mine = [lim for lim in found if lim.guards(provider)]
        if not mine:
            status = Status.FAIL
            unguarded.append(provider)
            quota_text = ", ".join(f"{k} {v}" for k, v in quotas[provider].items())
            lines.append(f"{provider}: NO GUARD — no limiter names it (quota: {quota_text})")
            rows.append({"provider": provider, "limit": "-", "limiter": None, "quota": None})
            continue
        for key, quota in quotas[provider].items():
            bounds = [(b, lim) for lim in mine if (b := lim.bound(key)) is not None]
            if not bounds:
                lines.append(f"{provider} {key}: quota {quota}; no limiter bounds it")
                rows.append({"provider": provider, "limit": key, "limiter": None, "quota": quota})
                continue
            bound, by = min(bounds, key=lambda pair: pair[0])
            over = bound > quota
            status = Status.FAIL if over else status
            verdict = "OVER QUOTA" if over else "ok"
            lines.append(
                f"{provider} {key}: limiter {bound} / quota {quota} — {verdict} ({by.name})"
            )
            rows.append(
                {
                    "provider": provider,
                    "limit": key,
                    "limiter": bound,
                    "quota": quota,
                    "ok": not over,
                }
            )
    if any(lim.kind == "instance" for lim in found):
        lines.append(
            "note: limiter instances count per identifier (e.g. per user) unless keyed "
            "globally; the provider sees the sum"
        )
    return Review(status, lines, rows, unguarded)


def judge_guard(text: str | None, where: str, switch: bool | None) -> tuple[Status, str]:
    """The guard exists at the tag, declares limiters, and is not switched off."""
    if text is None:
        return (
            Status.FAIL,
            f"{where} does not exist at the release tag: the rate-limit guard is gone",
        )
    found = limiters(text)
    if switch is False:
        return Status.FAIL, f"{where}: RATE_LIMIT_ENABLED = false — the guard is switched off"
    if not found:
        return Status.FAIL, (
            f"{where} declares no rate limiters (no `new …Limiter({{…}})` instance and no "
            "exported *RATE_LIMIT* configuration)"
        )
    state = "RATE_LIMIT_ENABLED = true" if switch else "no RATE_LIMIT_ENABLED switch (always on)"
    names = ", ".join(lim.name for lim in found)
    return Status.PASS, f"{where}: {state}; {len(found)} limiter(s): {names}"
