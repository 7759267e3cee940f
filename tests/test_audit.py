"""The ledger: appended entries chain, and any edit, deletion or reorder is detected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploybook.core import audit


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    out = tmp_path / "outputs"
    for index in range(3):
        record = out / "staging" / "v1.4.0" / f"2026010{index}T000000Z-0{index + 1}-x.ipynb"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"cells": [], "n": index}))
        audit.append_ledger(
            out,
            "staging",
            record=str(record.relative_to(out)),
            runbook=f"0{index + 1}",
            release="v1.4.0",
            status="passed",
        )
    return out


def verify_cli(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploybook", "audit", "verify", "--outputs", str(out)],
        capture_output=True,
        text=True,
    )


def test_untouched_ledger_verifies(outputs: Path) -> None:
    count, problems = audit.verify(outputs)
    assert (count, problems) == (3, [])
    proc = verify_cli(outputs)
    assert proc.returncode == 0
    assert "3 ledger entries verified" in proc.stdout


def test_entries_are_chained(outputs: Path) -> None:
    entries = audit.read_ledger(audit.ledger_path(outputs, "staging"))
    assert entries[0]["prev_hash"] == audit.GENESIS
    assert entries[1]["prev_hash"] == entries[0]["hash"]
    assert [e["seq"] for e in entries] == [1, 2, 3]


def _records(out: Path) -> list[Path]:
    return sorted((out / "staging" / "v1.4.0").glob("*.ipynb"))


def edit_record(out: Path) -> None:
    record = _records(out)[1]
    record.write_text(record.read_text().replace('"n": 1', '"n": 9'))


def delete_record(out: Path) -> None:
    _records(out)[0].unlink()


def edit_ledger_line(out: Path) -> None:
    path = audit.ledger_path(out, "staging")
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"passed"', '"failed"')
    path.write_text("\n".join(lines) + "\n")


def delete_ledger_line(out: Path) -> None:
    path = audit.ledger_path(out, "staging")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")


def reorder_ledger(out: Path) -> None:
    path = audit.ledger_path(out, "staging")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[1], lines[0], lines[2]]) + "\n")


def unlisted_record(out: Path) -> None:
    (out / "staging" / "v1.4.0" / "20270101T000000Z-99-forged.ipynb").write_text("{}")


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (edit_record, "was edited after it was recorded"),
        (delete_record, "was deleted"),
        (edit_ledger_line, "ledger line edited"),
        (delete_ledger_line, "chain broken"),
        (reorder_ledger, "chain broken"),
        (unlisted_record, "not in the ledger"),
    ],
)
def test_tampering_is_detected(outputs: Path, tamper, expected: str) -> None:
    tamper(outputs)
    _, problems = audit.verify(outputs)
    assert any(expected in str(p) for p in problems), problems
    proc = verify_cli(outputs)
    assert proc.returncode == 1
    assert expected in proc.stdout
