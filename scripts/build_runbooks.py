"""Write the runbook notebooks from their outlines in `scripts/outlines/`.

The notebooks are committed; this script keeps their structure (markdown quoting the
plan, one tagged parameters cell, one call per cell) consistent. Re-run it after editing
an outline; reference outputs for nbval are refreshed separately (`make nbval-refresh`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

sys.path.insert(0, str(Path(__file__).parent))
from outlines import OUTLINES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for index, (kind, source) in enumerate(cells):
        source = source.strip("\n")
        if kind == "md":
            cell = new_markdown_cell(source)
        else:
            cell = new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            elif kind == "volatile":
                cell.metadata["tags"] = ["nbval-ignore-output"]
        cell["id"] = f"{name[:2]}-{index:02d}"
        nb.cells.append(cell)
    return nb


def keep_references(nb: nbformat.NotebookNode, path: Path) -> int:
    """Carry nbval reference outputs over for code cells whose id and source are unchanged;
    returns how many changed cells lost theirs (refresh them)."""
    if not path.exists():
        return 0
    old = nbformat.read(path, as_version=4)
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
    if "widgets" in old.metadata:
        nb.metadata["widgets"] = old.metadata["widgets"]
    return lost


def main() -> None:
    for name, cells in OUTLINES.items():
        path = ROOT / "runbooks" / f"{name}.ipynb"
        nb = build(name, cells)
        lost = keep_references(nb, path)
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(ROOT)}")
        if lost:
            print(f"  {lost} changed cell(s) lost their nbval reference: make nbval-refresh")


if __name__ == "__main__":
    main()
