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
        cell["id"] = f"{name[:2]}-{index:02d}"
        nb.cells.append(cell)
    return nb


def main() -> None:
    for name, cells in OUTLINES.items():
        path = ROOT / "runbooks" / f"{name}.ipynb"
        nbformat.write(build(name, cells), path)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
