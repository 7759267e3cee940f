"""What differs between two runs: checks, evidence, parameters and versions (pure).

Two records of the same runbook (staging's 02 and production's, a failed 04 and its
rerun) differ in many things that mean nothing: timestamps, durations, ports, temporary
paths, digests of files that are per-run by nature, the environment's own name inside a
database name. Each side's text is normalised before comparing (`Normaliser`), so what
is left is what truly differs; the raw values are what is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Volatile tokens, in the order they are replaced (the longest shapes first).
_VOLATILE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d{8}T\d{6,12}Z", re.I), "⟨stamp⟩"),
    (
        re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?( UTC)?"),
        "⟨time⟩",
    ),
    (re.compile(r"\b\d\d:\d\d(:\d\d)?( UTC)?\b"), "⟨time⟩"),
    (re.compile(r"\b[0-9a-f]{12,64}\b"), "⟨digest⟩"),
    (re.compile(r"(_standby_)[0-9a-f]{12}\b"), r"\1⟨digest⟩"),  # a rollback standby's name
    (re.compile(r"\b(SHA256:)[A-Za-z0-9+/]{43}"), r"\1⟨key⟩"),
    (re.compile(r"(127\.0\.0\.1|localhost|\[::1\]):\d+"), r"\1:⟨port⟩"),
    (re.compile(r"/tmp/[^\s'\"),;]+"), "⟨tmp⟩"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|sec|seconds|min)\b"), "⟨duration⟩"),
    (re.compile(r"\bpid \d+"), "pid ⟨pid⟩"),
]


class Normaliser:
    """Turns one side's text into what can be compared with the other side's."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        # The side's own names (environment, its database, …) in their usual spellings.
        spellings = {v for n in names if n for v in (n, n.replace("-", "_"))}
        self._names = sorted(spellings, key=len, reverse=True)

    def __call__(self, text: Any) -> str:
        out = "" if text is None else str(text)
        for name in self._names:
            out = out.replace(name, "⟨env⟩")
        for pattern, replacement in _VOLATILE:
            out = pattern.sub(replacement, out)
        return out


@dataclass(frozen=True)
class CheckChange:
    """One check that differs: its status, its evidence, or that one side lacks it."""

    name: str
    kind: str  # "status" | "evidence" | "only in A" | "only in B"
    a_status: str = ""
    b_status: str = ""
    a_evidence: str = ""
    b_evidence: str = ""


@dataclass(frozen=True)
class FactChange:
    """One parameter, version or recorded fact that differs."""

    section: str  # "parameter" | "version" | "fact"
    key: str
    a: str
    b: str


@dataclass
class RecordDiff:
    """Everything that differs between record A and record B."""

    a_label: str
    b_label: str
    a_meta: dict[str, str] = field(default_factory=dict)
    b_meta: dict[str, str] = field(default_factory=dict)
    checks: list[CheckChange] = field(default_factory=list)
    facts: list[FactChange] = field(default_factory=list)
    same_checks: int = 0

    @property
    def empty(self) -> bool:
        return not self.checks and not self.facts

    def breached(self) -> list[CheckChange]:
        """Checks that passed in A and fail in B (what broke between the two runs)."""
        return [c for c in self.checks if c.a_status == "pass" and c.b_status == "fail"]


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_TOLERANCE = 0.05  # numbers closer than this (relative) are one measurement taken twice
# Leaves that are timings by nature: never a difference worth a reviewer's eye.
_TIMING_KEY = re.compile(r"(_s|_ms|duration\w*|elapsed\w*|_at|first_seen|last_seen)$")


def _value(token: str) -> float:
    return float(token.replace(",", ""))


def same_text(x: str, y: str) -> bool:
    """Equal, or equal but for numbers within 5% of each other (a dump's size, a count
    of bytes): the same fact measured on two copies, not a difference."""
    if x == y:
        return True
    if _NUMBER.sub("#", x) != _NUMBER.sub("#", y):
        return False
    pairs = zip(_NUMBER.findall(x), _NUMBER.findall(y), strict=True)
    return all(
        abs(_value(a) - _value(b)) <= _TOLERANCE * max(abs(_value(a)), abs(_value(b)))
        for a, b in pairs
    )


def _by_name(
    checks: Iterable[Mapping[str, Any]], norm: Callable[[Any], str]
) -> dict[str, Mapping[str, Any]]:
    """Checks keyed by their normalised name (a name holding the env's database matches)."""
    return {norm(c.get("name")): c for c in checks}


def diff_checks(
    a: Iterable[Mapping[str, Any]],
    b: Iterable[Mapping[str, Any]],
    norm_a: Callable[[Any], str],
    norm_b: Callable[[Any], str],
) -> tuple[list[CheckChange], int]:
    """Checks whose status changed, whose evidence changed (once normalised), or that only
    one side has; and how many are the same. Order: A's, then B's new ones."""
    left, right = _by_name(a, norm_a), _by_name(b, norm_b)
    changes, same = [], 0
    for key in [*left, *(n for n in right if n not in left)]:
        x, y = left.get(key), right.get(key)
        name = str((x or y or {}).get("name"))
        if x is None or y is None:
            kind = "only in B" if x is None else "only in A"
            c = x or y or {}
            status, evidence = str(c.get("status", "")), str(c.get("evidence") or "")
            changes.append(
                CheckChange(name, kind, *((status, "") if y is None else ("", status)),
                            *((evidence, "") if y is None else ("", evidence)))
            )  # fmt: skip
            continue
        xs, ys = str(x.get("status", "")), str(y.get("status", ""))
        xe, ye = str(x.get("evidence") or ""), str(y.get("evidence") or "")
        if xs != ys:
            changes.append(CheckChange(name, "status", xs, ys, xe, ye))
        elif not same_text(norm_a(xe), norm_b(ye)):
            changes.append(CheckChange(name, "evidence", xs, ys, xe, ye))
        else:
            same += 1
    return changes, same


def flatten(value: Any, prefix: str = "", limit: int = 400) -> dict[str, str]:
    """Nested scraps as ``a.b[0].c -> text`` leaves, each cut to ``limit`` characters."""
    out: dict[str, str] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key), limit))
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]", limit))
    else:
        text = value if isinstance(value, str) else repr(value)
        out[prefix] = text if len(text) <= limit else text[: limit - 1] + "…"
    return out


def diff_facts(
    section: str,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    norm_a: Callable[[Any], str],
    norm_b: Callable[[Any], str],
    *,
    ignore: Iterable[str] = (),
) -> list[FactChange]:
    """Leaves of ``a`` and ``b`` that differ once normalised (a missing leaf shows as '—')."""
    skip = tuple(ignore)
    changes = []
    for key in [*a, *(k for k in b if k not in a)]:  # a whole scrap only one side holds
        if (key in a) != (key in b) and not str(key).startswith(skip):
            held = f"recorded ({len(flatten(a.get(key, b.get(key))))} values)"
            x, y = (held, "—") if key in a else ("—", held)
            changes.append(FactChange(section, str(key), x, y))
    left = flatten({k: v for k, v in a.items() if k in b})
    right = flatten({k: v for k, v in b.items() if k in a})
    for key in [*left, *(k for k in right if k not in left)]:
        if key.startswith(skip) or _TIMING_KEY.search(key):
            continue
        x, y = left.get(key), right.get(key)
        if x is None or y is None or not same_text(norm_a(x), norm_b(y)):
            changes.append(
                FactChange(section, key, "—" if x is None else x, "—" if y is None else y)
            )
    return changes
