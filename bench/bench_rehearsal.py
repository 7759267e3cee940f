"""Benchmark 4: the full sandbox rehearsal's wall time and its kernel start-up share.

`deploybook rehearse` runs in a subprocess with its own DEPLOYBOOK_STATE_DIR and
DEPLOYBOOK_OUTPUTS (temporary), exactly as `make rehearse` would. The kernel start-up unit
is a trivial notebook executed by papermill the way the runner executes runbooks; times
the number of runbooks run, it is the share no runbook code can win back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .common import ROOT, Section, Size, Timing, fmt_s, md_table

TARGET_S = 60.0
_STEP = re.compile(r"^▶ (\S+) on (\S+)")
_DONE = re.compile(r"^\s+(passed|failed) in ([\d.]+) s \[(\w+)\]")


SHORT = {
    "kernel": "kernel start-up",
    "imports": "library import",
    "watch": "watch windows",
    "other": "other runbook work",
    "stack": "stack up/down",
}


def deploybook_command() -> list[str]:
    return [str(Path(sys.executable).parent / "deploybook"), "rehearse"]


IMPORTS = "import deploybook as db"  # every runbook's first code line


def kernel_startup(work: Path, code: str = "x + 1") -> float:
    """Execute a one-cell notebook with papermill (as runner.run_runbook does): seconds.

    With ``code=IMPORTS`` it is the start-up every runbook pays before its own work."""
    import nbformat
    import papermill

    work.mkdir(parents=True, exist_ok=True)
    source, out = work / "trivial.ipynb", work / "trivial-out.ipynb"
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, source)
    started = time.perf_counter()
    papermill.execute_notebook(
        str(source),
        str(out),
        parameters={"x": 2},
        kernel_name="python3",
        progress_bar=False,
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    return time.perf_counter() - started


def parse_output(text: str) -> list[dict[str, Any]]:
    """The runbook steps the rehearsal printed: runbook, env, status, seconds, as expected."""
    steps: list[dict[str, Any]] = []
    for line in text.splitlines():
        if m := _STEP.match(line):
            steps.append({"runbook": m[1], "env": m[2], "status": None, "s": None})
        elif (m := _DONE.match(line)) and steps and steps[-1]["status"] is None:
            steps[-1].update(status=m[1], s=float(m[2]), ok=m[3] == "ok")
    return steps


def cell_times(outputs: Path) -> list[tuple[float, str, str]]:
    """(seconds, runbook, source on one line) of every executed cell, slowest first."""
    cells = []
    for record in outputs.rglob("*.ipynb"):
        nb = json.loads(record.read_text())
        for cell in nb.get("cells", []):
            took = (cell.get("metadata", {}).get("papermill") or {}).get("duration")
            if cell.get("cell_type") == "code" and took:
                src = " ".join("".join(cell.get("source", "")).split())
                src = src if len(src) <= 90 else src[:89] + "…"
                cells.append((float(took), record.stem.split("-", 1)[-1], src))
    return sorted(cells, reverse=True)


def rehearse_once(command: list[str], timeout: float = 900) -> dict[str, Any]:
    """One rehearsal in fresh temporary state and outputs directories."""
    state = Path(tempfile.mkdtemp(prefix="dbk-bench-"))  # short: the PG socket path
    outputs = Path(tempfile.mkdtemp(prefix="dbk-bench-out-"))
    env = {**os.environ, "DEPLOYBOOK_STATE_DIR": str(state), "DEPLOYBOOK_OUTPUTS": str(outputs)}
    try:
        started = time.perf_counter()
        proc = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        wall = time.perf_counter() - started
        return {
            "wall": wall,
            "rc": proc.returncode,
            "steps": parse_output(proc.stdout),
            "tail": (proc.stdout + proc.stderr)[-1500:],
            "cells": cell_times(outputs),
        }
    finally:
        if command[-1] == "rehearse":  # never leave a stack running behind a failure
            subprocess.run(
                [command[0], "sandbox", "down", "--purge"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                timeout=120,
            )
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(outputs, ignore_errors=True)


def run(
    size: Size,
    work: Path,
    progress=print,
    command: list[str] | None = None,
    kernel_runs: int = 2,
    probe_imports: bool = True,
) -> tuple[Section, dict[str, Any]]:
    """Kernel unit and rehearsals, interleaved; ``command`` replaces `deploybook rehearse`;
    ``probe_imports=False`` skips timing the library imports (the quick test)."""
    command = command or deploybook_command()
    unit, imports, wall = Timing(), Timing(), Timing()
    per_step: dict[str, Timing] = defaultdict(Timing)
    last: dict[str, Any] = {}
    for i in range(max(size.rehearsal_runs, 1)):
        progress(f"  rehearsal run {i + 1}: kernel start-up unit, then the rehearsal")
        for _ in range(kernel_runs):
            unit.add(kernel_startup(work / "kernel"))
            if probe_imports:
                imports.add(kernel_startup(work / "kernel", IMPORTS))
        last = rehearse_once(command)
        if last["rc"] != 0:
            progress(f"  rehearsal exited {last['rc']}: {last['tail'][-300:]}")
        wall.add(last["wall"])
        for n, step in enumerate(last["steps"]):
            if step["s"] is not None:
                per_step[f"{n + 1}. {step['runbook']} on {step['env']}"].add(step["s"])
    steps = len(last["steps"])
    in_steps = sum(t.median for t in per_step.values())
    imports = imports if imports.runs else unit
    parts = {
        "kernel": steps * unit.median,
        "imports": steps * max(imports.median - unit.median, 0.0),
        "watch": sum(sec for sec, _, src in last["cells"] if "watch" in src),
    }
    parts["other"] = max(in_steps - sum(parts.values()), 0.0)
    parts["stack"] = max(wall.median - in_steps, 0.0)
    labels = {
        "kernel": f"kernel start-up: {steps} runbooks × {fmt_s(unit.median)} "
        "(trivial papermill run)",
        "imports": f"`{IMPORTS}` in each kernel: {steps} × "
        f"{fmt_s(max(imports.median - unit.median, 0.0))}",
        "watch": "SLA watch windows (waiting by design; cells calling `watch_…`)",
        "other": "the rest of the runbooks' work",
        "stack": "stack up/down, between runbooks and the rest",
    }
    share = {k: v / wall.median if wall.median else 0.0 for k, v in parts.items()}
    rows = [
        [f"rehearsal wall time (`deploybook rehearse`, exit {last['rc']})", wall.cell(), "100%"]
    ]
    rows += [[labels[k], fmt_s(v), f"{share[k]:.0%}"] for k, v in parts.items()]
    body = md_table(["measure", "min / median", "share"], rows)
    body += "\n\nPer runbook run (as the rehearsal reports it):\n\n" + md_table(
        ["step", "min / median"], [[k, t.cell()] for k, t in per_step.items()]
    )
    if last["cells"]:
        body += "\n\nSlowest cells of the last rehearsal (papermill's per-cell durations):\n\n"
        body += md_table(
            ["seconds", "runbook", "cell"],
            [[f"{s:.1f}", rb, f"`{src}`"] for s, rb, src in last["cells"][:6]],
        )
    met = wall.median <= TARGET_S and last["rc"] == 0
    notes = []
    if not met:
        fixes = {
            "kernel": "keep one warm kernel for the whole rehearsal (a kernel manager that "
            "outlives a notebook)",
            "imports": "import less at `import deploybook` (lazy submodules)",
            "watch": "shorten the rehearsal's watch windows in params/sandbox.yaml",
            "other": "run the sandbox and sandbox-production runbooks of a stage concurrently "
            "(different databases and services)",
            "stack": "start PostgreSQL and the stand-in daemon in parallel in `stack.up`",
        }
        ranked = sorted(parts, key=lambda k: -parts[k])
        notes.append(
            f"Missed by {fmt_s(wall.median - TARGET_S)}. Largest parts first: "
            + "; ".join(f"{SHORT[k]} {fmt_s(parts[k])} → {fixes[k]}" for k in ranked)
            + "."
        )
    section = Section(
        "4. Full sandbox rehearsal",
        f"≤ {TARGET_S:.0f} s wall time",
        met,
        body,
        notes,
        summary=f"{fmt_s(wall.median)} median for {steps} runbook runs; kernel start-up "
        f"{share['kernel']:.0%} of it ({share['kernel'] + share['imports']:.0%} with "
        "`import deploybook`).",
    )
    return section, {"wall": wall, "unit": unit, "imports": imports, "steps": steps}
