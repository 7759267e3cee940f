"""Did the latest 04-smoke of ENV/RELEASE fail on a breached SLA? Exit 0 yes, 1 no.

Orchestrators (the Airflow DAG, the GitHub workflow) branch to 05-rollback on this, never
on 04's exit code alone: 04 also fails on a smoke check or an inconclusive watch, and only
a breach says "roll back" (the plan's section 16). The record is taken from the ledger and
checked against it before its breach scrap is read, as 05 itself does.

Run with deploybook's venv: ``.venv/bin/python orchestrate/breach.py --env E --release R``.
"""

from __future__ import annotations

import argparse
import sys

from deploybook.core import audit, paths
from deploybook.session.glued import read_glued


def breached_metric(env: str, release: str) -> tuple[str | None, str]:
    """(the breached metric or None, why) for the newest 04-smoke entry of env/release."""
    outputs = paths.outputs_dir()
    entries = [
        e
        for e in audit.read_ledger(audit.ledger_path(outputs, env))
        if e.get("runbook") == "04-smoke" and e.get("release") == release
    ]
    if not entries:
        return None, f"no 04-smoke record of {env} {release} in the ledger"
    record = entries[-1]["record"]
    _, kind, what = audit.check_record(outputs, env, record)
    if kind:
        return None, f"{record}: not trusted ({kind}: {what})"
    scrap = read_glued(outputs / record).get("breach")
    data = scrap.data if scrap is not None else None
    metric = data.get("metric") if isinstance(data, dict) else None
    return metric, f"{record}: " + (f"SLA breached on {metric}" if metric else "no breach")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--release", required=True)
    args = parser.parse_args(argv)
    metric, why = breached_metric(args.env, args.release)
    print(why)
    return 0 if metric else 1


if __name__ == "__main__":
    sys.exit(main())
