"""The sandbox's throwaway approvers sign ENV's approvals (what `make rehearse` does after 02).

On a real night each approver signs on their own machine (`deploybook approve`) and the
orchestrator only waits; on the sandbox there is nobody to ask, so the DAG's spec runs this
between 02 and 03 (a `command` step). Uses the stack's keys from the state dir.

Run with deploybook's venv: ``.venv/bin/python orchestrate/sandbox_sign.py --env E --release R``.
"""

from __future__ import annotations

import argparse
import sys

from deploybook.core import paths
from deploybook.ops.approve import sign_roles
from deploybook.ops.rehearsal import SIGNOFFS
from deploybook.sandbox import signers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--release", required=True)
    args = parser.parse_args(argv)
    stored = sign_roles(
        args.env, args.release, signers.approvers(paths.state_dir()), names=SIGNOFFS
    )
    for path in stored:
        print(f"signed    {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
