"""A rehearsal starts a fresh stack: the sandbox records of the one before are moved aside
(issue 19), still verifiable, and nothing else under outputs/ moves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deploybook.core import audit
from deploybook.ops import rehearsal


def write_records(outputs: Path, env: str, count: int = 2) -> None:
    for index in range(count):
        record = outputs / env / "v1.4.0" / f"2026010{index}T000000Z-0{index + 1}-x.ipynb"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"cells": [], "n": index}))
        audit.append_ledger(
            outputs,
            env,
            record=str(record.relative_to(outputs)),
            runbook=f"0{index + 1}",
            release="v1.4.0",
            status="passed",
        )


def verify(outputs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploybook", "audit", "verify", "--outputs", str(outputs)],
        capture_output=True,
        text=True,
    )


def test_earlier_sandbox_records_move_aside_and_still_verify(tmp_path: Path, capsys) -> None:
    outputs = tmp_path / "outputs"
    write_records(outputs, "sandbox")
    write_records(outputs, "sandbox-production", 3)
    write_records(outputs, "staging")  # a real environment's records never move

    archive = rehearsal._archive_earlier_records(outputs)

    assert archive is not None and archive.parent == outputs / "rehearsals"
    assert sorted(p.name for p in outputs.iterdir()) == ["rehearsals", "staging"]
    assert sorted(p.name for p in archive.iterdir()) == ["sandbox", "sandbox-production"]
    assert f"earlier sandbox records moved to {archive}" in capsys.readouterr().out
    moved = verify(archive)
    assert moved.returncode == 0, moved.stderr
    assert "ok: 5 ledger entries verified" in moved.stdout
    # The archive is not an environment of outputs/: verify there sees staging alone.
    here = verify(outputs)
    assert here.returncode == 0, here.stderr
    assert "ok: 2 ledger entries verified" in here.stdout


def test_nothing_to_move_leaves_outputs_alone(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    write_records(outputs, "staging")
    assert rehearsal._archive_earlier_records(outputs) is None
    assert sorted(p.name for p in outputs.iterdir()) == ["staging"]
