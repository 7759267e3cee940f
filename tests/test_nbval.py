"""nbval regression: all five committed runbooks re-executed against a prepared sandbox.

The runbooks carry reference outputs from a run on a prepared sandbox (`make nbval-refresh`,
i.e. `scripts/refresh_references.py`; `tests/nbval_stack.py` prepares the records 03 and 05
read by running 02 and 03 headless first). Here the same preparation runs on a fresh
stack, then `pytest --nbval` re-executes each runbook in a fresh kernel whose working
directory is `runbooks/` — as JupyterLab does, committed parameters, ``execute = False`` —
and compares every displayed output after `nbval_sanitize.cfg` has masked what
legitimately varies between two sandboxes (times, durations, ports, temp paths, hashes…).
A changed message fails until the references are refreshed on purpose. By hand, against a
stack whose records exist (e.g. after `deploybook rehearse --keep-up`):

    PYTHONPATH=tests python -m pytest -p nbval_plugin --nbval \
        --nbval-sanitize-with tests/nbval_sanitize.cfg runbooks/0*.ipynb
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbval_stack import ENV, interactive_environ, prepared_stack
from sandbox_fixtures import CANARIES, files_containing

from deploybook.ops import rehearsal
from deploybook.ops.runner import RUNBOOKS
from deploybook.sandbox import stack

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
SANITIZE = TESTS / "nbval_sanitize.cfg"
# Every runbook is compared strictly with its committed references.
STRICT = list(RUNBOOKS)
REFRESH_HINT = 'refresh the references on purpose: make nbval-refresh RUNBOOKS="…"'


def notebook(name: str) -> Path:
    return ROOT / "runbooks" / f"{name}.ipynb"


@pytest.fixture(scope="module")
def prepared() -> Iterator[dict[str, Any]]:
    """An own stack on which 02 and 03 ran (not the shared `sandbox`: the records written
    here, a rollout that executed and its snapshot, would change what other tests see)."""
    with prepared_stack(CANARIES) as state:
        yield state


def nbval(args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run pytest with nbval in a subprocess: interactive kernels against the prepared stack."""
    env = interactive_environ(os.environ)  # the fixture set the state dir, outputs, canaries
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "nbval_plugin", "-p", "no:cacheprovider"]
        + ["-q", "-rA", "--color=no", "--nbval-cell-timeout=180", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-8000:]}\n{proc.stderr[-2000:]}"


def assert_has_references(name: str) -> None:
    """Without references nbval compares nothing and passes vacuously: refuse that."""
    nb = nbformat.read(notebook(name), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    unrun = [c.get("id") for c in code if c.execution_count is None]
    assert not unrun, f"{name}: cells {unrun} have no reference output; {REFRESH_HINT}"
    gate = code[-1]
    assert "run.finish()" in gate.source
    assert any("deploybook-checks" in str(o.get("data", {})) for o in gate.outputs), REFRESH_HINT
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    # The notebook stays the source: no papermill cell or metadata, no secret.
    assert "papermill" not in nb.metadata
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in code)
    text = notebook(name).read_text(encoding="utf-8")
    assert not [v for v in CANARIES.values() if v in text]


@pytest.mark.parametrize("name", STRICT)
def test_runbook_carries_reference_outputs(name: str) -> None:
    assert_has_references(name)


@pytest.mark.parametrize("name", STRICT)
def test_nbval_strict_matches_references(prepared: dict[str, Any], name: str) -> None:
    assert_has_references(name)
    ledger = prepared["outputs"] / ENV / "ledger.jsonl"
    before = ledger.read_text(encoding="utf-8") if ledger.exists() else None

    started = time.monotonic()
    proc = nbval(["--nbval", "--nbval-sanitize-with", str(SANITIZE), str(notebook(name))])
    # Shown with -s or on failure: where the time went.
    print(f"prepared in {prepared['prepared_s']:.0f} s {prepared['runs']}; ", end="")
    print(f"{name} in {time.monotonic() - started:.0f} s")

    assert proc.returncode == 0, f"{name} differs from its references ({REFRESH_HINT})\n" + explain(
        proc
    )
    # One item per code cell, every one compared and passing.
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(notebook(name), 4).cells)
    passed = re.findall(r"^PASSED \S+?\.ipynb::Cell \d+$", proc.stdout, re.M)
    assert len(passed) == code_cells, explain(proc)
    assert not re.search(r"\b\d+ (failed|errors?)\b", proc.stdout), explain(proc)
    # Interactive runs with the defaults are dry runs: no headless record was added, and
    # the sandbox still runs the release 03 rolled out.
    assert (ledger.read_text(encoding="utf-8") if ledger.exists() else None) == before
    health = stack.status(prepared["state"])["envs"][ENV]
    assert {svc: h["version"] for svc, h in health.items()} == dict.fromkeys(
        stack.SERVICES, rehearsal.RELEASE
    )
    # Nothing a kernel wrote or showed holds a secret.
    assert not files_containing(prepared["outputs"], list(CANARIES.values()))
    assert not [v for v in CANARIES.values() if v in proc.stdout + proc.stderr]


def test_a_changed_message_fails_nbval(prepared: dict[str, Any], tmp_path: Path) -> None:
    """Acceptance: what a runbook shows differs from its reference -> nbval fails on that cell.

    A copy of 01, cut after the scope cell to stay quick, whose reference says "shipped"
    where the runbook shows "ships".
    """
    nb = nbformat.read(notebook("01-preconditions"), as_version=4)
    scope = next(i for i, c in enumerate(nb.cells) if "preconditions.scope(" in c.source)
    nb.cells = nb.cells[: scope + 1]
    before = nbformat.writes(nb)
    assert "nothing out of scope ships" in before, REFRESH_HINT
    copy = tmp_path / "01-preconditions.ipynb"
    copy.write_text(before.replace("nothing out of scope ships", "nothing out of scope shipped"))
    # The copy lives outside the checkout, so tell the kernel where the checkout is.
    proc = nbval(
        ["--nbval", "--nbval-sanitize-with", str(SANITIZE), str(copy)],
        {"DEPLOYBOOK_ROOT": str(ROOT)},
    )
    assert proc.returncode == 1, explain(proc)
    assert "Cell outputs differ" in proc.stdout and "1 failed" in proc.stdout, explain(proc)
    # The failing cell is the scope cell, on its HTML (pytest may truncate the diff itself).
    assert "mismatch 'text/html'" in proc.stdout, explain(proc)
    assert "Input:\nbook.preconditions.scope(run)" in proc.stdout, explain(proc)
