"""`--nbval-lax` over all five runbooks, as the deployment lead opens them in JupyterLab.

Each runbook is run with its committed parameters (sandbox, ``execute = False``: nothing
changes) in a fresh kernel whose working directory is `runbooks/`, and must execute
without an error. Runbooks 03 and 05 read earlier records (02's snapshot, 03's rollout
record with each service's previous version), so this test brings up its own stack and
first runs, headless and with the rehearsal's parameters, the steps of `rehearsal.plan()`
on the sandbox whose records a later runbook reads: 02 (the snapshot) and 03 with
``execute = True`` and the sign-offs (previous versions, snapshot, applied migrations).
On the sandbox (role staging) nothing reads the 01 record (only a production 03 compares
artifacts) nor a passing 04 record (05 reads only a breach); `PREPARE` adds them (about
30 s more). Outputs are not compared (that is tests/test_nbval.py's strict pass); only
errors fail.

By hand, against a stack whose records exist (e.g. after `deploybook rehearse --keep-up`):

    PYTHONPATH=tests python -m pytest -p nbval_plugin --nbval-lax runbooks/0*.ipynb
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_fixtures import CANARIES, files_containing

from deploybook.ops import rehearsal
from deploybook.ops.runner import RUNBOOKS, run_runbook
from deploybook.sandbox import stack

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
ENV = "sandbox"
# Variables that would make the kernel headless or pin its root/record: a person in
# JupyterLab has none of them.
_NOT_INTERACTIVE = ("DEPLOYBOOK_HEADLESS", "DEPLOYBOOK_RECORD", "DEPLOYBOOK_ROOT")
# The sandbox steps of the rehearsal run first, in the plan's order: those whose records
# 03 and 05 read. The whole sandbox half is ("01-preconditions", *PREPARE, "04-smoke").
PREPARE = ("02-migration-dry-run", "03-rollout")


@pytest.fixture(scope="module")
def rehearsed() -> Iterator[dict[str, Any]]:
    """An own stack (mkdtemp state dir) on which the rehearsal's `PREPARE` steps ran.

    Not the shared `sandbox` fixture: the records written here (a rollout that executed,
    its snapshot) would change what other tests' runbooks see. Always stopped and removed.
    """
    base = Path(tempfile.mkdtemp(prefix="deploybook-nbval-all-"))
    state, outputs = base / "state", base / "outputs"
    saved = os.environ.copy()
    os.environ.update(DEPLOYBOOK_STATE_DIR=str(state), DEPLOYBOOK_OUTPUTS=str(outputs), **CANARIES)
    for name in _NOT_INTERACTIVE:
        os.environ.pop(name, None)
    try:
        started = time.monotonic()
        stack.up(state, password=CANARIES["DEPLOYBOOK_SANDBOX_DB_PASSWORD"], progress=None)
        runs = []
        for step in rehearsal.plan():
            if step.env != ENV or step.runbook not in PREPARE:
                continue
            assert step.before is None, step
            result = run_runbook(
                step.runbook, ENV, rehearsal.RELEASE, dict(step.parameters), html=False
            )
            runs.append((step.runbook, result.status, round(result.duration_s, 1)))
            assert result.status == step.expect, (
                f"preparing the records: {step.runbook} on {ENV} {result.status} "
                f"(expected {step.expect}): {result.error}; see {result.record}"
            )
        assert [name for name, _, _ in runs] == list(PREPARE), runs
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


def nbval_lax(notebooks: list[Path]) -> subprocess.CompletedProcess:
    """pytest --nbval-lax in a subprocess: interactive kernels against this module's stack."""
    env = os.environ.copy()  # the fixture set the state dir, outputs and canaries
    for name in _NOT_INTERACTIVE:
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    # `deploybook` in the params' commands is this installation's, as in the runner.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "nbval_plugin", "-p", "no:cacheprovider"]
        + ["-q", "-rA", "--color=no", "--nbval-lax", "--nbval-cell-timeout=120"]
        + [str(n) for n in notebooks],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-8000:]}\n{proc.stderr[-2000:]}"


def test_nbval_lax_runs_all_five_runbooks(rehearsed: dict[str, Any]) -> None:
    notebooks = [ROOT / "runbooks" / f"{name}.ipynb" for name in RUNBOOKS]
    assert len(notebooks) == 5 and all(n.exists() for n in notebooks)
    ledger = rehearsed["outputs"] / ENV / "ledger.jsonl"
    before = ledger.read_text(encoding="utf-8") if ledger.exists() else None

    started = time.monotonic()
    proc = nbval_lax(notebooks)
    # Shown with -s or on failure: where the time went (kernel start-up dominates).
    print(f"prepared in {rehearsed['prepared_s']:.0f} s {rehearsed['runs']}; ", end="")
    print(f"nbval-lax in {time.monotonic() - started:.0f} s")

    assert proc.returncode == 0, explain(proc)
    # nbval-lax collects one item per code cell: every runbook is collected and passes.
    items = re.findall(r"^PASSED (\S+?\.ipynb)::Cell \d+$", proc.stdout, re.M)
    per_runbook = {name: sum(Path(i).stem == name for i in items) for name in RUNBOOKS}
    assert all(per_runbook.values()) and len(per_runbook) == 5, (per_runbook, explain(proc))
    summary = re.search(r"^(\d+) passed\b", proc.stdout, re.M)
    assert summary and int(summary.group(1)) == len(items), explain(proc)
    assert not re.search(r"\b\d+ (failed|errors?)\b", proc.stdout), explain(proc)
    # Interactive runs with the defaults are dry runs: no headless record was added, and
    # the sandbox still runs the release 03 rolled out.
    assert (ledger.read_text(encoding="utf-8") if ledger.exists() else None) == before
    health = stack.status(rehearsed["state"])["envs"][ENV]
    assert {svc: h["version"] for svc, h in health.items()} == dict.fromkeys(
        stack.SERVICES, rehearsal.RELEASE
    )
    # Nothing a kernel wrote or showed holds a secret.
    assert not files_containing(rehearsed["outputs"], list(CANARIES.values()))
    assert not [v for v in CANARIES.values() if v in proc.stdout + proc.stderr]
