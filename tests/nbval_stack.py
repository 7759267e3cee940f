"""The prepared sandbox the runbooks' nbval references are taken on and compared against.

Runbooks 02–05 read earlier records: 03 and 05 need 02's snapshot and 03's rollout record
(each service's previous version). So, in a fresh stack in its own temporary directory,
the sandbox steps of `rehearsal.plan()` whose records a later runbook reads (`PREPARE`:
02, then 03 with ``execute = True`` and the sign-offs) run first, headless, exactly as the
rehearsal runs them. Then the runbooks are opened as a lead opens them in JupyterLab:
committed parameters (sandbox, ``execute = False``: nothing changes), interactive kernel
in `runbooks/`. `scripts/refresh_references.py` (taking references) and
`tests/test_nbval.py` (comparing with them) both use `prepared_stack`, so both see the
same records.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deploybook.ops import rehearsal
from deploybook.ops.runner import run_runbook
from deploybook.sandbox import stack

ENV = "sandbox"
PREPARE = ("02-migration-dry-run", "03-rollout")
# Variables that would make a kernel headless or pin its root/record: a person in
# JupyterLab has none of them.
NOT_INTERACTIVE = ("DEPLOYBOOK_HEADLESS", "DEPLOYBOOK_RECORD", "DEPLOYBOOK_ROOT")


def interactive_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` as a kernel opened in JupyterLab would see it, with this installation first."""
    env = {k: v for k, v in environ.items() if k not in NOT_INTERACTIVE}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextmanager
def prepared_stack(secrets: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """A fresh stack (mkdtemp) on which `PREPARE` ran; sets os.environ for it meanwhile.

    `secrets` (e.g. the tests' canaries, including DEPLOYBOOK_SANDBOX_DB_PASSWORD) are set
    in the environment before the stack starts. Always stopped and removed; os.environ is
    restored.
    """
    base = Path(tempfile.mkdtemp(prefix="deploybook-nbval-"))
    state, outputs = base / "state", base / "outputs"
    saved = os.environ.copy()
    os.environ.update(DEPLOYBOOK_STATE_DIR=str(state), DEPLOYBOOK_OUTPUTS=str(outputs))
    os.environ.update(secrets or {})
    os.environ.update(interactive_environ(os.environ))  # kernels started from here inherit it
    for name in NOT_INTERACTIVE:
        os.environ.pop(name, None)
    try:
        started = time.monotonic()
        password = (secrets or {}).get("DEPLOYBOOK_SANDBOX_DB_PASSWORD")
        stack.up(state, password=password, progress=None)
        for env in stack.ENVS:
            stack.sandbox_environment(env)  # registers the stack's secrets with scrub()
        runs = []
        for step in rehearsal.plan():
            if step.env != ENV or step.runbook not in PREPARE:
                continue
            result = run_runbook(
                step.runbook, ENV, rehearsal.RELEASE, dict(step.parameters), html=False
            )
            runs.append((step.runbook, result.status, round(result.duration_s, 1)))
            if result.status != step.expect:
                raise RuntimeError(
                    f"preparing the records: {step.runbook} on {ENV} {result.status} "
                    f"(expected {step.expect}): {result.error}; see {result.record}"
                )
        if [name for name, _, _ in runs] != list(PREPARE):
            raise RuntimeError(f"preparing the records ran {runs}, expected {PREPARE}")
        yield {
            "state": state,
            "outputs": outputs,
            "runs": runs,
            "prepared_s": time.monotonic() - started,
        }
    finally:
        stack.down(state, progress=None)
        shutil.rmtree(base, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)
