"""What a production approval shows (markdown): release, artifact SHAs, 02's summary, records.

The approver in Airflow (or any orchestrator) must see what they approve without opening a
terminal: the artifact SHAs of staging's passing 01 record, staging's 02 dry-run record
(SHA-256 and summary, the facts a signed sign-off binds) and every staging record of the
release with its status and where it is (the object-storage copy when records are pushed).

Run with deploybook's venv:
``.venv/bin/python orchestrate/approval_body.py --staging-env E --release R [--records-url URL]``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from deploybook.core import audit, paths
from deploybook.core.secrets import scrub
from deploybook.errors import DeploybookError
from deploybook.session import records, scraps, signing


def _impact(env: str, release: str, outputs: Any) -> list[str]:
    """02's measured impact on production: total lock time, window fit, worst tables."""
    dry = records.find(env, release, "02-migration-dry-run", passed=True, outputs=outputs)
    impact = dry.read(scraps.MigrationImpact) if dry else None
    if impact is None:
        return ["", "**Impact**: not measured by this 02 record"]
    total = f"{'at least ' if impact.at_least else ''}{impact.total_s:.1f} s"
    out = ["", f"**Impact** (02's dry run on a full copy): migrations take {total}"]
    if impact.window and impact.window.get("text"):
        out.append(f"window: {impact.window['text']}")
    out += [f"- {line}" for line in impact.lines[:5]]
    return out


def body(staging_env: str, target_env: str, release: str, records_url: str = "") -> str:
    """The approval's markdown; a missing staging fact is said, not hidden."""
    outputs = paths.outputs_dir()
    lines = [f"## Release {release} to {target_env}", ""]
    try:
        binding = signing.current_binding(staging_env, release, outputs)
        lines += [f"Staging ({staging_env}) facts, from its verified records:", ""]
        lines += ["| artifact | SHA |", "|---|---|"]
        lines += [f"| {k} | `{v}` |" for k, v in sorted(binding.artifacts.items())]
        lines += [
            "",
            f"**02 dry run** `{binding.dry_run_record}`",
            f"(sha256 `{binding.dry_run_sha256[:16]}…`): {binding.dry_run_summary}",
        ]
        lines += _impact(staging_env, release, outputs)
    except DeploybookError as exc:
        lines += [f"**Staging facts missing**: {exc}"]
    base = records_url.rstrip("/")
    lines += ["", f"### {staging_env} records of {release}", "", "| runbook | status | record |"]
    lines += ["|---|---|---|"]
    for entry in audit.read_ledger(audit.ledger_path(outputs, staging_env)):
        if entry.get("release") != release or not entry.get("record"):
            continue
        where = f"{base}/{entry['html']}" if base and entry.get("html") else entry["record"]
        lines.append(f"| {entry.get('runbook')} | {entry.get('status')} | {where} |")
    return scrub("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staging-env", required=True)
    parser.add_argument("--env", required=True, help="the environment being approved")
    parser.add_argument("--release", required=True)
    parser.add_argument("--records-url", default="")
    args = parser.parse_args(argv)
    print(body(args.staging_env, args.env, args.release, args.records_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
