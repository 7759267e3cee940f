"""``deploybook audit diff``: two records of a runbook compared (`deploybook.core.diff`).

A side is a record path, an environment (its latest record of ``runbook`` for
``release``), or ``latest`` / ``previous`` in one environment (the last two records of
``runbook``). Every record is verified against its ledger first (`records.at`), so a diff
never compares a hand-edited record. What is compared: the checks (status and evidence),
the notebook's parameters, and the scraps a run hands on (artifacts, versions, snapshot,
migrations, …), each normalised for what differs by nature (`core.diff.Normaliser`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploybook.core import audit, paths
from deploybook.core.diff import Normaliser, RecordDiff, diff_checks, diff_facts
from deploybook.errors import ConfigError
from deploybook.session import records, scraps

LATEST, PREVIOUS = "latest", "previous"
# Scraps that are not compared as facts: the checks are compared as checks, the rest is
# per-run by nature (timings, raw samples) or shown in the header.
_NOT_FACTS = (
    scraps.CheckRecords.NAME,
    scraps.Timing.NAME,
    scraps.Summary.NAME,
    scraps.RunFacts.NAME,
    scraps.WatchSamples.NAME,
)
# Parameters that name the side rather than describe the run.
_SIDE_PARAMETERS = ("env", "params_file", "run_id")


@dataclass(frozen=True)
class Side:
    """One resolved record: its environment, path under outputs and ledger entry."""

    env: str
    rel: str
    record: records.Record


def _entries(outputs: Path, env: str, release: str, runbook: str) -> list[dict[str, Any]]:
    return [
        e
        for e in audit.read_ledger(audit.ledger_path(outputs, env))
        if e.get("runbook") == runbook and e.get("release") == release and e.get("record")
    ]


def resolve(
    which: str, *, env: str | None, release: str | None, runbook: str | None, outputs: Path
) -> Side:
    """A record path, an environment name, or latest/previous (ConfigError saying what is
    missing); verified against the ledger (RecordUntrusted when it cannot be trusted)."""
    path = Path(which)
    if which.endswith(".ipynb") or "/" in which:
        rel = path.resolve().relative_to(outputs) if path.is_absolute() else path
        if not (outputs / rel).exists() and path.exists():
            rel = path.resolve().relative_to(outputs)
        side_env = rel.parts[0]
        return Side(side_env, str(rel), records.at(side_env, rel, outputs))
    if not (release and runbook):
        raise ConfigError(
            f"audit diff {which}: an environment or latest/previous needs --release and --runbook"
        )
    if which in (LATEST, PREVIOUS):
        if not env:
            raise ConfigError(f"audit diff {which}: name the environment with --env")
        found = _entries(outputs, env, release, runbook)
        index = -1 if which == LATEST else -2
        if len(found) < -index:
            raise ConfigError(
                f"audit diff: {env} has {len(found)} {runbook} record(s) of {release}, "
                f"no {which} one"
            )
        rel = str(found[index]["record"])
        return Side(env, rel, records.at(env, rel, outputs))
    found = _entries(outputs, which, release, runbook)
    if not found:
        raise ConfigError(f"audit diff: no {runbook} record of {release} in environment {which}")
    rel = str(found[-1]["record"])
    return Side(which, rel, records.at(which, rel, outputs))


def _parameters(path: Path) -> dict[str, Any]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return dict((notebook.get("metadata", {}).get("papermill") or {}).get("parameters") or {})


def _names(side: Side, run: dict[str, Any]) -> list[str]:
    """The side's own names, which differ between environments by design."""
    names = [side.env]
    if params_file := run.get("params_file"):
        names.append(Path(str(params_file)).stem)
    return names


def compare(a: Side, b: Side) -> RecordDiff:
    """What differs between two verified records."""
    ga, gb = a.record.glued, b.record.glued
    run_a = dict((ga.get(scraps.RunFacts.NAME) or (None, None))[0] or {})
    run_b = dict((gb.get(scraps.RunFacts.NAME) or (None, None))[0] or {})
    norm_a, norm_b = Normaliser(_names(a, run_a)), Normaliser(_names(b, run_b))
    checks_a = (ga.get(scraps.CheckRecords.NAME) or (None, None))[0] or []
    checks_b = (gb.get(scraps.CheckRecords.NAME) or (None, None))[0] or []
    changes, same = diff_checks(checks_a, checks_b, norm_a, norm_b)
    params_a = {k: v for k, v in _parameters(a.record.path).items() if k not in _SIDE_PARAMETERS}
    params_b = {k: v for k, v in _parameters(b.record.path).items() if k not in _SIDE_PARAMETERS}
    facts = diff_facts("parameter", params_a, params_b, norm_a, norm_b)
    facts_a = {n: g.data for n, g in ga.items() if n not in _NOT_FACTS}
    facts_b = {n: g.data for n, g in gb.items() if n not in _NOT_FACTS}
    facts += diff_facts("fact", facts_a, facts_b, norm_a, norm_b)
    return RecordDiff(
        a_label=a.rel,
        b_label=b.rel,
        a_meta=_meta(a, run_a),
        b_meta=_meta(b, run_b),
        checks=changes,
        facts=facts,
        same_checks=same,
    )


def _meta(side: Side, run: dict[str, Any]) -> dict[str, str]:
    entry = side.record.entry
    return {
        "env": side.env,
        "runbook": str(entry.get("runbook", run.get("runbook", ""))),
        "release": str(entry.get("release", run.get("release", ""))),
        "status": str(entry.get("status", "")),
        "started": str(run.get("started_at") or entry.get("started_at") or ""),
        "operator": str(run.get("operator") or ""),
    }


def diff(
    a: str,
    b: str,
    *,
    env: str | None = None,
    release: str | None = None,
    runbook: str | None = None,
    outputs: Path | None = None,
) -> RecordDiff:
    """Resolve both sides and compare them."""
    outputs = (outputs or paths.outputs_dir()).resolve()
    where = {"env": env, "release": release, "runbook": runbook, "outputs": outputs}
    return compare(resolve(a, **where), resolve(b, **where))
