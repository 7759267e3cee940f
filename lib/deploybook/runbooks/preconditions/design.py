"""Plan section 20, design-system notes: rules from params, checked in what ships.

Each rule in ``preconditions.design_rules`` is one check whose evidence lists the offending
lines as ``file:line: text``, read at the release tag through `deploybook.systems.git`. Finding
the lines is pure (text in, `Hit`s out) so tests call it directly; rules are non-critical
unless params say otherwise, so by default a violation is shown but does not stop the gate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from deploybook.config import DesignRule, Params
from deploybook.core.checks import Checks, Status, run_check
from deploybook.systems import git as repo

__all__ = ["Hit", "dependency_hits", "design_rules", "glob_regex", "judge_rule", "pattern_hits"]

SECTION = "20"
PRODUCTION_SECTIONS = ("dependencies", "optionalDependencies")  # installed in production
_LIST_LIMIT = 15
_TEXT_LIMIT = 160
_STRING = re.compile(r'"(?:\\.|[^"\\])*"')


@dataclass(frozen=True)
class Hit:
    """One offending line: where it is and what it says."""

    file: str
    line: int
    text: str

    def __str__(self) -> str:
        text = self.text.strip()
        return f"{self.file}:{self.line}: {text[:_TEXT_LIMIT]}" + (
            "…" if len(text) > _TEXT_LIMIT else ""
        )


# --- finding the lines (pure) ----------------------------------------------------------------


@lru_cache(maxsize=64)
def glob_regex(glob: str) -> re.Pattern[str]:
    """A path glob as a regex: ``**/`` spans zero or more folders, ``*`` and ``?`` stay
    inside one path component (``apps/web/src/**/*.tsx`` matches ``apps/web/src/a.tsx``)."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matching_files(files: Iterable[str], globs: Iterable[str]) -> list[str]:
    """The files (sorted) that match any of the globs."""
    patterns = [glob_regex(g.strip("/")) for g in globs]
    return sorted(f for f in files if any(p.match(f) for p in patterns))


def pattern_hits(text: str, pattern: re.Pattern[str], file: str) -> list[Hit]:
    """Every line of ``text`` on which ``pattern`` occurs (patterns match line by line)."""
    return [
        Hit(file, number, line)
        for number, line in enumerate(text.splitlines(), 1)
        if pattern.search(line)
    ]


def dependency_hits(text: str, package: str, file: str) -> list[Hit]:
    """Where ``package`` is declared as a production dependency in a package.json text.

    Raises ValueError when the text is not a JSON object. The line is found by walking the
    top-level sections; minified JSON, where that fails, reports line 1.
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    sections = [
        s for s in PRODUCTION_SECTIONS if isinstance(data.get(s), dict) and package in data[s]
    ]
    if not sections:
        return []
    hits, depth, section = [], 0, None
    key = re.compile(rf'^\s*"{re.escape(package)}"\s*:')
    for number, line in enumerate(text.splitlines(), 1):
        bare = _STRING.sub('""', line)
        if depth == 1 and (opened := re.match(r'^\s*"([^"]+)"\s*:\s*\{', line)):
            section = opened.group(1)
        elif depth == 2 and section in sections and key.match(line):
            hits.append(Hit(file, number, line))
        depth += bare.count("{") - bare.count("}")
        if depth <= 1:
            section = None
    if not hits:  # e.g. minified: still name the file and what it declares
        hits = [Hit(file, 1, f'"{package}": "{data[s][package]}" in {s}') for s in sections]
    return hits


def judge_rule(
    rule: DesignRule, hits: list[Hit], scanned: int, release: str
) -> tuple[Status, str, list[dict[str, Any]]]:
    """A rule's verdict: each offending line listed, or what was looked at."""
    what = (
        f"{rule.package} is a production dependency in {rule.package_json}"
        if rule.kind == "forbidden-dependency"
        else f"/{rule.pattern}/ occurs in {', '.join(rule.globs)}"
    )
    rows = [asdict(h) for h in hits]
    if hits:
        lines = [str(h) for h in hits]
        more = [f"… and {len(lines) - _LIST_LIMIT} more"] if len(lines) > _LIST_LIMIT else []
        head = f"{what} at {release}: {len(hits)} offending line(s)"
        return Status.FAIL, "\n".join([head, *lines[:_LIST_LIMIT], *more]), rows
    if rule.kind == "forbidden-dependency":
        sections = " or ".join(PRODUCTION_SECTIONS)
        where = f"{rule.package_json}@{release}"
        return Status.PASS, f"{rule.package} is not in {sections} of {where}", rows
    if scanned == 0:
        return (
            Status.WARN,
            f"the globs {', '.join(rule.globs)} match no file at {release}: nothing was "
            "checked (fix the globs in preconditions.design_rules)",
            rows,
        )
    return Status.PASS, f"/{rule.pattern}/ occurs in none of {scanned} file(s) at {release}", rows


# --- reading the checkout at the tag ---------------------------------------------------------


def _rule_probe(params: Params, release: str, rule: DesignRule, files: dict[str, set[str]]):
    checkout = params.checkout.path

    def probe() -> tuple[Status, str, Any]:
        if not repo.tag_exists(checkout, release):
            return Status.FAIL, f"tag {release} does not exist in {checkout}: nothing to check"
        if rule.kind == "forbidden-dependency":
            text = repo.read_at(checkout, release, rule.package_json or "")
            if text is None:
                return Status.FAIL, (
                    f"{rule.package_json} does not exist at {release}: fix package_json of "
                    f"design rule {rule.name!r}"
                )
            try:
                hits = dependency_hits(text, rule.package or "", rule.package_json or "")
            except ValueError as exc:
                return Status.FAIL, f"{rule.package_json}@{release} is not valid JSON ({exc})"
            return judge_rule(rule, hits, 1, release)
        if release not in files:  # one ls-tree for every pattern rule
            files[release] = repo.files_at(checkout, release)
        pattern = re.compile(rule.pattern or "")
        scanned = matching_files(files[release], rule.globs)
        hits = []
        for rel in scanned:
            text = repo.read_at(checkout, release, rel)
            hits += pattern_hits(text or "", pattern, rel)
        return judge_rule(rule, hits, len(scanned), release)

    return probe


def design_rules(params: Params, release: str) -> Checks:
    """Plan section 20: one check per design-system rule in ``preconditions.design_rules``."""
    rules = params.preconditions.design_rules
    if not rules:
        return Checks(
            [
                run_check(
                    "design-system rules",
                    SECTION,
                    lambda: (
                        Status.SKIP,
                        "no design-system rules configured (preconditions.design_rules)",
                    ),
                    critical=False,
                )
            ]
        )
    files: dict[str, set[str]] = {}
    return Checks(
        run_check(
            f"design: {rule.name}",
            SECTION,
            _rule_probe(params, release, rule, files),
            critical=rule.critical,
        )
        for rule in rules
    )
