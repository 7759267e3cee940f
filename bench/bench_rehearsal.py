"""Benchmark 4: the full sandbox rehearsal's wall time and where it goes.

`deploybook rehearse` runs in a subprocess with its own DEPLOYBOOK_STATE_DIR and
DEPLOYBOOK_OUTPUTS (temporary), exactly as `make rehearse` would. The breakdown comes from
what the rehearsal itself wrote: papermill's per-cell durations in each record (start cell,
closing overview cell, plots, SLA watch, deploy/rollback commands, the rest), the ledger's
start and end of each run (papermill minus its cells is kernel start-up and saving; the gaps
between runs are the runner's HTML, scrubbing and ledger), and the wall time outside the
runs (stack up and down, the release overview pages). The kernel start-up unit is a trivial
notebook executed by papermill the way the runner executes runbooks: the floor per runbook.
The load average is recorded around every run: the machine may be shared.

`python -m bench.bench_rehearsal [--runs 3]` measures this section alone (no benchmark
database) and merges it into bench/results.md.
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


# Cells by what they spend their time on (a cell's source, on one line).
CELL_KINDS = (
    ("start", lambda src: src.startswith("import deploybook")),
    ("overview", lambda src: "book.overview(" in src),
    ("plots", lambda src: "plot(" in src or ".timeline(" in src),
    ("watch", lambda src: "watch_slas(" in src),
    ("commands", lambda src: ".execute(run" in src or "revert_and_restore(" in src),
)
LABELS = {
    "kernel": "kernel hand-over, shutdown and papermill's saves (each run's papermill time "
    "minus its cells; kernels boot while the previous run runs)",
    "start": "start cells: `import deploybook.runbooks.<runbook>` + `start()`",
    "overview": "closing overview cells (release overview so far, page written)",
    "plots": "plot cells (schedule, timeline, SLA plots: matplotlib)",
    "watch": "SLA watch windows (waiting by design: params `watch_window_s`)",
    "commands": "03's rollout steps and 05's revert + restore (deploy commands, restore)",
    "cells": "every other cell",
    "between": "between runs: HTML rendering, scrubbing, ledger, parameter checks",
    "outside": "outside the runs: stack up/down, release overview pages",
}


def deploybook_command() -> list[str]:
    return [str(Path(sys.executable).parent / "deploybook"), "rehearse"]


# 04-smoke's start cell imports (each notebook imports its own runbook package).
IMPORTS = "import deploybook.runbooks as book\nimport deploybook.runbooks.smoke"


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


def ledger_runs(outputs: Path) -> list[tuple[float, float, float]]:
    """(start, end, papermill seconds) of every run in the ledgers, in time order."""
    from datetime import datetime

    runs = []
    for ledger in outputs.glob("*/ledger.jsonl"):
        for line in ledger.read_text().splitlines():
            entry = json.loads(line) if line.strip() else {}
            if entry.get("started_at") and entry.get("ended_at"):
                start = datetime.fromisoformat(entry["started_at"]).timestamp()
                end = datetime.fromisoformat(entry["ended_at"]).timestamp()
                runs.append((start, end, float(entry.get("duration_s") or end - start)))
    return sorted(runs)


def breakdown(wall: float, cells: list[tuple[float, str, str]], runs: list) -> dict[str, float]:
    """Where a rehearsal's wall time went (seconds per part of `LABELS`); empty without
    records (a rehearsal that never ran a runbook)."""
    if not runs:
        return {}
    parts = dict.fromkeys(LABELS, 0.0)
    for seconds, _, src in cells:
        kind = next((k for k, test in CELL_KINDS if test(src)), "cells")
        parts[kind] += seconds
    in_cells = sum(seconds for seconds, _, _ in cells)
    parts["kernel"] = max(sum(r[2] for r in runs) - in_cells, 0.0)
    # A run's ledger span also holds the runner's own work after papermill (HTML, ledger).
    spans = sum(end - start for start, end, _ in runs)
    gaps = sum(max(b[0] - a[1], 0.0) for a, b in zip(runs, runs[1:], strict=False))
    parts["between"] = max(spans - sum(r[2] for r in runs), 0.0) + gaps
    parts["outside"] = max(wall - (runs[-1][1] - runs[0][0]), 0.0)
    return parts


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) CPU ticks since boot, from /proc/stat's ``cpu`` line ((0, 0) where
    there is none): steal is time this VM's vCPUs were ready but ran another tenant."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return 0, 0
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return (ticks[7] if len(ticks) > 7 else 0), sum(ticks)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share of CPU time stolen between two `cpu_ticks` readings (None: unknown)."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else None


def rehearse_once(command: list[str], timeout: float = 900) -> dict[str, Any]:
    """One rehearsal in fresh temporary state and outputs directories."""
    state = Path(tempfile.mkdtemp(prefix="dbk-bench-"))  # short: the PG socket path
    outputs = Path(tempfile.mkdtemp(prefix="dbk-bench-out-"))
    env = {**os.environ, "DEPLOYBOOK_STATE_DIR": str(state), "DEPLOYBOOK_OUTPUTS": str(outputs)}
    try:
        load_before = os.getloadavg()[0]
        ticks = cpu_ticks()
        started = time.perf_counter()
        proc = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        wall = time.perf_counter() - started
        cells = cell_times(outputs)
        return {
            "wall": wall,
            "rc": proc.returncode,
            "steps": parse_output(proc.stdout),
            "tail": (proc.stdout + proc.stderr)[-1500:],
            "cells": cells,
            "parts": breakdown(wall, cells, ledger_runs(outputs)),
            "load": (load_before, os.getloadavg()[0]),
            "steal": steal_share(ticks, cpu_ticks()),
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
    runs: int | None = None,
) -> tuple[Section, dict[str, Any]]:
    """Kernel unit and rehearsals, interleaved; ``command`` replaces `deploybook rehearse`;
    ``probe_imports=False`` skips timing the start cell's imports (the quick test);
    ``runs`` overrides the size's number of rehearsals."""
    command = command or deploybook_command()
    unit, imports, wall = Timing(), Timing(), Timing()
    per_step: dict[str, Timing] = defaultdict(Timing)
    per_part: dict[str, Timing] = defaultdict(Timing)
    loads: list[tuple[float, float]] = []
    steals: list[float | None] = []
    last: dict[str, Any] = {}
    for i in range(max(runs if runs is not None else size.rehearsal_runs, 1)):
        progress(f"  rehearsal run {i + 1}: kernel start-up unit, then the rehearsal")
        for _ in range(kernel_runs):
            unit.add(kernel_startup(work / "kernel"))
            if probe_imports:
                imports.add(kernel_startup(work / "kernel", IMPORTS))
        last = rehearse_once(command)
        if last["rc"] != 0:
            progress(f"  rehearsal exited {last['rc']}: {last['tail'][-300:]}")
        progress(f"  rehearsal run {i + 1}: {last['wall']:.1f} s, load {last['load']}")
        wall.add(last["wall"])
        loads.append(last["load"])
        steals.append(last["steal"])
        for n, step in enumerate(last["steps"]):
            if step["s"] is not None:
                per_step[f"{n + 1}. {step['runbook']} on {step['env']}"].add(step["s"])
        for part, seconds in last["parts"].items():
            per_part[part].add(seconds)
    steps = len(last["steps"])
    start_cell = max(imports.median - unit.median, 0.0) if imports.runs else None
    rows = [
        [f"rehearsal wall time (`deploybook rehearse`, exit {last['rc']})", wall.cell(), "100%"]
    ]
    rows += [
        [LABELS[k], per_part[k].cell(), f"{per_part[k].median / wall.median:.0%}"]
        for k in LABELS
        if k in per_part
    ]
    rows.append(
        [
            f"kernel start-up: {steps} runbooks × {fmt_s(unit.median)} (trivial papermill "
            "run; the floor if each run started its own kernel — the rehearsal's boot ahead)",
            fmt_s(steps * unit.median),
            f"{steps * unit.median / wall.median:.0%}" if wall.median else "",
        ]
    )
    if start_cell is not None:
        rows.append(
            [
                f"04's start-cell imports in a bare kernel: {fmt_s(start_cell)} each "
                "(included above)",
                fmt_s(start_cell),
                "",
            ]
        )
    body = md_table(["measure", "min / median", "share of the median"], rows)
    body += "\n\nLoad average (1 min) before → after each rehearsal, on 2 cores: " + ", ".join(
        f"{a:.1f} → {b:.1f}" for a, b in loads
    )
    body += (
        "\n\nCPU steal during each rehearsal (the share of CPU time this VM's vCPUs waited "
        "for other tenants, /proc/stat): "
        + ", ".join("unknown" if v is None else f"{v:.1%}" for v in steals)
    )
    body += "\n\nPer runbook run (as the rehearsal reports it):\n\n" + md_table(
        ["step", "min / median"], [[k, t.cell()] for k, t in per_step.items()]
    )
    if last["cells"]:
        body += "\n\nSlowest cells of the last rehearsal (papermill's per-cell durations):\n\n"
        body += md_table(
            ["seconds", "runbook", "cell"],
            [[f"{s:.1f}", rb, f"`{src}`"] for s, rb, src in last["cells"][:8]],
        )
    met = wall.median <= TARGET_S and last["rc"] == 0
    notes = []
    if not met and per_part:
        ranked = sorted(per_part, key=lambda k: -per_part[k].median)[:4]
        notes.append(
            f"Missed by {fmt_s(wall.median - TARGET_S)}. Largest parts first: "
            + "; ".join(f"{LABELS[k].split(' (')[0]} {fmt_s(per_part[k].median)}" for k in ranked)
            + "."
        )
    busiest = max((a for a, _ in loads), default=0.0)
    if busiest > 1.5:
        notes.append(
            f"The machine was shared while this ran (load up to {busiest:.1f} on 2 cores): "
            "wall times are longer than on a quiet machine; the shares say where time goes."
        )
    section = Section(
        "4. Full sandbox rehearsal",
        f"≤ {TARGET_S:.0f} s wall time",
        met,
        body,
        notes,
        summary=f"{fmt_s(wall.median)} median for {steps} runbook runs"
        + (f" (load {loads[0][0]:.1f} at the start)" if loads else "")
        + ".",
    )
    return section, {"wall": wall, "unit": unit, "imports": imports, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    """This section alone, merged into results.md: no benchmark database is needed."""
    import argparse

    from .common import SIZES
    from .run import merge, render

    parser = argparse.ArgumentParser(prog="python -m bench.bench_rehearsal", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.md")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dbk-bench-kernel-"))
    try:
        section, _ = run(SIZES["full"], work, runs=args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    previous = args.out.read_text() if args.out.exists() else ""
    # The previous note about section 4 is replaced by this run's.
    previous = re.sub(r"^Section(?:\(s\))? 4 re-measured .*\n\n?", "", previous, flags=re.M)
    fresh = render(SIZES["full"], {}, {}, [section])
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    note = (
        f"Section 4 re-measured by `python -m bench.bench_rehearsal --runs {args.runs}` on "
        f"{stamp}; the others are from the runs above."
    )
    args.out.write_text(merge(previous, fresh, note) if previous else fresh)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
