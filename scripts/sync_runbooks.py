"""Write the runbook notebooks from their jupytext sources: runbooks/NN-name.py → .ipynb.

The sources are the truth: edit `runbooks/*.py` (percent format, linted by ruff like any
other code), then run `make runbooks`. Each `# %%` line is one cell:

    # %% [markdown] id="04-03"        a markdown cell quoting the plan (text as comments)
    # %% tags=["parameters"] id="04-01"   the parameters cell papermill injects after
    # %% tags=["nbval-ignore-output"] id="04-16"   output nbval must not compare
    # %% id="04-04"                   one call: book.<runbook>.<step>(run, …)

`id` is the notebook cell id; a new cell may leave it out and is given the next free one,
written back into the source. Cell ids are how the nbval reference outputs stay attached:
a code cell whose id and source are unchanged keeps its outputs, a changed or new cell
loses them and the script says to refresh (`make nbval-refresh RUNBOOKS="…"`). The
notebook's widget state and kernel metadata are kept too.

    python scripts/sync_runbooks.py                 # every runbook
    python scripts/sync_runbooks.py 04-smoke        # some
    python scripts/sync_runbooks.py --check         # exit 1 if a notebook is out of date

The notebooks are paired with their sources (`jupytext.formats`), so JupyterLab (with the
jupytext extension that comes with the package) saves edits to both files;
tests/test_runbook_sources.py fails when they disagree.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = ROOT / "runbooks"
FORMAT = "py:percent"
# Notebook metadata the source carries; the rest (language_info, widgets) is the notebook's.
JUPYTEXT = {
    "formats": f"ipynb,{FORMAT}",
    "notebook_metadata_filter": "kernelspec,jupytext,-jupytext.text_representation",
}
CELL_LINE = re.compile(r"^# %%(?P<rest>.*)$", re.M)
ID_OPTION = re.compile(r'\bid="(?P<id>[^"]+)"')
NOTEBOOK_KEPT = ("kernelspec", "language_info", "widgets")


def sources(names: list[str] | None = None) -> list[Path]:
    """The runbook sources, all of them or those whose name starts with one of `names`."""
    found = sorted(RUNBOOKS.glob("[0-9][0-9]-*.py"))
    if not names:
        return found
    chosen = [p for p in found if any(p.stem.startswith(n) for n in names)]
    missing = [n for n in names if not any(p.stem.startswith(n) for p in found)]
    if missing:
        raise SystemExit(f"no runbook source runbooks/{missing[0]}*.py")
    return chosen


def assign_missing_ids(path: Path) -> int:
    """Give every `# %%` cell without an id the next free `NN-II`; returns how many."""
    text = path.read_text(encoding="utf-8")
    prefix = path.stem[:2]
    taken = [m.group("id") for m in ID_OPTION.finditer(text)]
    numbers = [int(i.rsplit("-", 1)[1]) for i in taken if re.fullmatch(rf"{prefix}-\d+", i)]
    counter = iter(range(max(numbers, default=-1) + 1, 10**6))
    added = 0

    def add(match: re.Match[str]) -> str:
        nonlocal added
        if ID_OPTION.search(match.group("rest")):
            return match.group(0)
        added += 1
        return f'# %%{match.group("rest").rstrip()} id="{prefix}-{next(counter):02d}"'

    new = CELL_LINE.sub(add, text)
    if added:
        path.write_text(new, encoding="utf-8")
    return added


def from_source(path: Path) -> nbformat.NotebookNode:
    """The notebook a source describes: cells, ids and tags, no outputs."""
    nb = jupytext.read(path, fmt=FORMAT)
    ids = []
    for cell in nb.cells:
        cell_id = cell.metadata.pop("id", None)
        if not cell_id:
            raise SystemExit(f"{path.name}: a cell has no id (run `make runbooks`)")
        cell["id"] = cell_id
        ids.append(cell_id)
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise SystemExit(f"{path.name}: cell id(s) {duplicated} used twice; make them unique")
    nb.metadata = nbformat.from_dict({"kernelspec": nb.metadata.get("kernelspec", {})})
    nb.metadata["jupytext"] = dict(JUPYTEXT)
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def keep_references(nb: nbformat.NotebookNode, old: nbformat.NotebookNode | None) -> int:
    """Carry nbval reference outputs over for code cells whose id and source are unchanged;
    returns how many changed cells lost theirs (refresh them)."""
    if old is None:
        return 0
    before = {c.get("id"): c for c in old.cells if c.cell_type == "code"}
    lost = 0
    for cell in nb.cells:
        previous = before.get(cell.get("id"))
        if cell.cell_type != "code" or previous is None:
            continue
        if previous.source == cell.source:
            cell.outputs, cell.execution_count = previous.outputs, previous.execution_count
        elif previous.outputs:
            lost += 1
    for key in NOTEBOOK_KEPT:
        if key in old.metadata:
            nb.metadata[key] = old.metadata[key]
    return lost


def keep_source_newest(source: Path) -> None:
    """Touch the jupytext source after its notebook was written: JupyterLab (through
    jupytext) refuses to open a paired notebook that is newer than its text file."""
    os.utime(source)


def sync(path: Path, check: bool = False) -> bool:
    """Write runbooks/NAME.ipynb from runbooks/NAME.py; returns whether it changed."""
    target = path.with_suffix(".ipynb")
    if not check and assign_missing_ids(path):
        print(f"gave new cells ids in {path.relative_to(ROOT)}")
    nb = from_source(path)
    old = nbformat.read(target, as_version=4) if target.exists() else None
    lost = keep_references(nb, old)
    nbformat.validate(nb)
    text = nbformat.writes(nb) + "\n"
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return False
    if check:
        print(f"out of date: {target.relative_to(ROOT)} (run `make runbooks`)")
        return True
    target.write_text(text, encoding="utf-8")
    keep_source_newest(path)
    print(f"wrote {target.relative_to(ROOT)}")
    if lost:
        print(f"  {lost} changed cell(s) lost their nbval reference: make nbval-refresh")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runbooks", nargs="*", help="runbook names or prefixes (default: all)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    changed = [sync(path, check=args.check) for path in sources(args.runbooks)]
    return 1 if args.check and any(changed) else 0


if __name__ == "__main__":
    sys.exit(main())
