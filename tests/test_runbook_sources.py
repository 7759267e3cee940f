"""Each runbook notebook agrees with its jupytext source (runbooks/NN-name.py).

The sources are what people edit and ruff lints; the notebooks are what JupyterLab,
papermill and nbval run. A notebook whose cells differ from its source (type, text, tags,
id) was edited on one side only: `make runbooks` (scripts/sync_runbooks.py) rewrites the
notebooks from the sources and keeps the nbval references of unchanged cells.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "runbooks").glob("[0-9][0-9]-*.py"))
NOTEBOOKS = sorted((ROOT / "runbooks").glob("[0-9][0-9]-*.ipynb"))
FIX = "run `make runbooks` to rewrite the notebooks from runbooks/*.py"


def shape(cell: nbformat.NotebookNode, cell_id: str | None) -> tuple:
    return (cell_id, cell.cell_type, cell.source, tuple(cell.metadata.get("tags", ())))


def test_every_notebook_has_a_source() -> None:
    assert len(SOURCES) == 5, [p.name for p in SOURCES]
    assert [p.stem for p in SOURCES] == [p.stem for p in NOTEBOOKS], FIX


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source(source: Path) -> None:
    text = jupytext.read(source, fmt="py:percent")
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    want = [shape(c, c.metadata.get("id")) for c in text.cells]
    have = [shape(c, c.get("id")) for c in nb.cells]
    for index, (w, h) in enumerate(zip(want, have, strict=False)):
        assert w == h, (
            f"{source.stem}: cell {index} differs between the source and the notebook; {FIX}"
            f"\n  source:   {w}\n  notebook: {h}"
        )
    assert len(want) == len(have), (
        f"{source.stem}: {len(want)} cells in the source, {len(have)} in the notebook; {FIX}"
    )
    assert all(cell_id for cell_id, *_ in want), f"{source.stem}: a cell has no id; {FIX}"
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", FIX


def test_parameters_cell_is_tagged_once() -> None:
    for source in SOURCES:
        cells = jupytext.read(source, fmt="py:percent").cells
        tagged = [c for c in cells if "parameters" in c.metadata.get("tags", ())]
        assert len(tagged) == 1 and tagged[0].cell_type == "code", source.stem


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_is_not_older_than_its_notebook(source: Path) -> None:
    """JupyterLab (through jupytext) refuses to open a paired notebook that is newer than
    its text file: `make runbooks` and `make nbval-refresh` touch the source after writing."""
    notebook = source.with_suffix(".ipynb")
    assert source.stat().st_mtime >= notebook.stat().st_mtime, (
        f"{notebook.name} is newer than {source.name}: JupyterLab would not open it; {FIX}"
    )
