"""Ledger anchors: the head an announcement published, checked against the ledger later.

A hash chain alone cannot tell a ledger whose last lines were removed, or whose hashes were
all recomputed after an edit, from an honest one: both verify. Each announcement (start,
finish, rollback, incident) therefore carries the ledger's current length and head hash,
``ledger ENV length N head HASH``; the receivers (Slack, email) keep a copy out of the
operator's reach. `check` then says whether the ledger still holds that head at that
length, so a shortened, deleted or rewritten ledger is caught since that point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from deploybook.core import audit
from deploybook.errors import AuditError, ConfigError

LINE = re.compile(
    r"ledger (?P<env>[a-z][a-z0-9-]{0,40}) length (?P<length>\d+) head (?P<head>[0-9a-f]{64})"
)
BARE = re.compile(
    r"^(?:(?P<env>[a-z][a-z0-9-]{0,40}):(?:(?P<length>\d+):)?)?(?P<head>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Anchor:
    """A ledger's state as announced: which environment, how many lines, the last hash."""

    env: str
    length: int
    head: str

    def line(self) -> str:
        """The text an announcement carries (and `parse` finds again in any export)."""
        return f"ledger {self.env} length {self.length} head {self.head}"

    def __str__(self) -> str:
        return f"{self.env} length {self.length} head {self.head[:12]}…"


def current(outputs: Path, env: str) -> Anchor:
    """The ledger's head now (length 0 and the genesis hash when it is empty)."""
    entries = audit.read_ledger(audit.ledger_path(outputs, env))
    return Anchor(env, len(entries), entries[-1].get("hash", "") if entries else audit.GENESIS)


def announcement(outputs: Path, env: str) -> str:
    """The anchor line for an announcement; never fails the announcement itself."""
    try:
        return current(outputs, env).line()
    except AuditError as exc:
        return f"ledger {env}: unreadable ({exc})"


def parse(text: str) -> list[Anchor]:
    """Every anchor in a text: receiver messages as JSON, an email, a Slack export, a list."""
    found = [Anchor(m["env"], int(m["length"]), m["head"]) for m in LINE.finditer(text)]
    return list(dict.fromkeys(found))


def parse_expected(value: str) -> Anchor:
    """``--expect-head``: ``HASH``, ``ENV:HASH`` or ``ENV:LENGTH:HASH`` (env/length may be
    unknown: empty env and length 0 mean 'any ledger holding this hash')."""
    match = BARE.match(value.strip().lower())
    if not match:
        raise ConfigError(
            f"--expect-head {value!r}: expected a 64-hex hash, ENV:HASH or ENV:N:HASH"
        )
    return Anchor(match["env"] or "", int(match["length"] or 0), match["head"])


def check(outputs: Path, anchor: Anchor) -> str:
    """Why the ledger no longer holds ``anchor`` ('' when it does, at that length)."""
    if anchor.length == 0 and anchor.head == audit.GENESIS:
        return ""  # announced while the ledger was empty: nothing to hold yet
    envs = (
        [anchor.env]
        if anchor.env
        else sorted(p.parent.name for p in outputs.glob("*/ledger.jsonl"))
    )
    if anchor.env and not audit.ledger_path(outputs, anchor.env).exists():
        where = audit.ledger_path(outputs, anchor.env)
        return f"announced head {anchor}, but {where} does not exist (deleted)"
    for env in envs:
        try:
            entries = audit.read_ledger(audit.ledger_path(outputs, env))
        except AuditError as exc:
            return f"announced head {anchor}: the ledger cannot be read ({exc})"
        for index, entry in enumerate(entries, 1):
            if entry.get("hash") == anchor.head:
                if anchor.length and index != anchor.length:
                    return (
                        f"announced head {anchor} is now line {index}: lines were removed "
                        "or added before it"
                    )
                return ""
        if anchor.env:
            if anchor.length and len(entries) < anchor.length:
                return (
                    f"announced head {anchor}, but the ledger has only {len(entries)} lines: it "
                    "was shortened since"
                )
            return (
                f"announced head {anchor} is not in the ledger: it was rewritten since "
                "(hashes recomputed after an edit)"
            )
    return (
        f"announced head {anchor.head[:12]}… is in no ledger under {outputs}: rewritten or deleted"
    )


def ledgerless(outputs: Path, envs: list[str]) -> list[tuple[str, str]]:
    """(env, what) for each environment with records but no ledger (the ledger was deleted)."""
    found = []
    for env in envs:
        if audit.ledger_path(outputs, env).exists():
            continue
        records = sorted((outputs / env).glob("*/*.ipynb"))
        if records:
            found.append(
                (env, f"ledger.jsonl is missing but {len(records)} record(s) exist: deleted")
            )
    return found


def verify(
    outputs: Path, envs: list[str] | None, expected: list[Anchor]
) -> tuple[int, list[audit.Problem], list[Anchor]]:
    """`audit.verify` plus what a chain alone cannot see: a deleted ledger beside its
    records, and every announced head the ledger no longer holds. Returns (entries checked,
    problems, the heads checked now)."""
    count, problems = audit.verify(outputs, envs)
    with_ledger = sorted(p.parent.name for p in outputs.glob("*/ledger.jsonl"))
    on_disk = sorted(p.name for p in outputs.iterdir() if p.is_dir()) if outputs.is_dir() else []
    wanted = envs or sorted(set(on_disk) | {a.env for a in expected if a.env})
    for env, what in ledgerless(outputs, wanted):
        problems.append(audit.Problem(env, "ledger.jsonl", what))
    for anchor in expected:
        if envs and anchor.env and anchor.env not in envs:
            continue
        if why := check(outputs, anchor):
            problems.append(audit.Problem(anchor.env or "?", "announced head", why))
    heads = [current(outputs, env) for env in (envs or with_ledger) if env in with_ledger]
    return count, problems, heads
