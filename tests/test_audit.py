"""The ledger: appended entries chain, and any edit, deletion or reorder is detected."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# --- a record a gate reads is verified first (session.records) ----------------------------


@pytest.mark.parametrize(
    ("tamper", "runbook", "kind", "why"),
    [
        (edit_record, "02", "edited", "was edited after it was recorded"),
        (delete_record, "01", "missing", "was deleted"),
        (edit_ledger_line, "03", "chain broken", "ledger line 2: ledger line edited"),
        (delete_ledger_line, "03", "chain broken", "ledger line 2: sequence 3"),
        (reorder_ledger, "01", "chain broken", "ledger line 1: sequence 2"),
    ],
    ids=["edited", "missing", "ledger-line-edited", "ledger-line-deleted", "reordered"],
)
def test_records_refuses_a_tampered_record(
    outputs: Path, tamper, runbook: str, kind: str, why: str
) -> None:
    from deploybook.session import records

    assert records.find("staging", "v1.4.0", runbook, outputs=outputs) is not None
    tamper(outputs)
    with pytest.raises(records.RecordUntrusted) as caught:
        records.find("staging", "v1.4.0", runbook, passed=True, outputs=outputs)
    message = str(caught.value)
    assert caught.value.kind == kind and f"cannot be trusted ({kind})" in message
    assert caught.value.record.endswith(f"Z-{runbook}-x.ipynb") and caught.value.record in message
    assert why in message, message
    assert f"re-run {runbook} (deploybook run {runbook} --env staging --release v1.4.0)" in message


def test_records_trusts_what_precedes_a_tampered_record(outputs: Path) -> None:
    from deploybook.session import records

    edit_record(outputs)  # the second record; the first and its chain are intact
    first = records.find("staging", "v1.4.0", "01", outputs=outputs)
    assert first is not None and first.path.name.endswith("-01-x.ipynb")
    entry, kind, what = audit.check_record(
        outputs, "staging", str(_records(outputs)[1].relative_to(outputs))
    )
    assert entry is not None and (kind, "edited after it was recorded" in what) == ("edited", True)
    with pytest.raises(records.RecordUntrusted, match=r"\(not in the ledger\)"):
        records.at("staging", "staging/v1.4.0/forged.ipynb", outputs)


def test_04_row_counts_refuse_an_edited_02_record(tmp_path: Path) -> None:
    """04's post-deploy validation compares with the snapshot of a verified 02 record only."""
    import nbformat

    from deploybook.core.checks import Status
    from deploybook.runbooks.smoke.validation import row_count_check, snapshot_counts

    out = tmp_path / "outputs"
    snap = {"path": "s.dump", "sha256": "a" * 64, "inventory": {"row_counts": {"users": 3}}}
    glued = nbformat.v4.new_output(
        "display_data",
        data={
            "application/scrapbook.scrap.json+json": {
                "name": "snapshot",
                "data": snap,
                "encoder": "json",
                "version": 1,
            }
        },
        metadata={"scrapbook": {"name": "snapshot", "data": True, "display": False}},
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("# glued", outputs=[glued]))
    record = audit.record_path(out, "staging", "v1.4.0", "02-migration-dry-run")
    record.parent.mkdir(parents=True)
    nbformat.write(notebook, record)
    rel = str(record.relative_to(out))
    audit.append_ledger(
        out,
        "staging",
        record=rel,
        runbook="02-migration-dry-run",
        release="v1.4.0",
        status="passed",
    )
    assert snapshot_counts("staging", "v1.4.0", out)[0] == {"users": 3}

    record.write_text(record.read_text().replace('"users": 3', '"users": 0'))
    check = row_count_check(None, "staging", "v1.4.0", ["users"], out)  # no database needed
    assert check.status is Status.FAIL and check.data == rel
    assert f"02-migration-dry-run record {rel} cannot be trusted (edited)" in check.evidence


# --- anchored ledger (issue 20 item 3) --------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, Any]]:
    """The sandbox's real webhook receiver on 127.0.0.1 (its URL, its message store)."""
    import asyncio
    import threading

    from deploybook.sandbox.receivers import HttpListener, MessageStore, WebhookReceiver

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    store = MessageStore()
    listener = HttpListener("webhook", WebhookReceiver(store))
    asyncio.run_coroutine_threadsafe(listener.open(), loop).result(10)
    try:
        yield f"{listener.url}/hooks/T000/B000/anchor", store
    finally:
        asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def verify_with(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploybook", "audit", "verify", "--outputs", str(out), *extra],
        capture_output=True,
        text=True,
    )


def _drop_last(out: Path) -> None:
    """Delete the newest record and its ledger line: the chain alone still verifies."""
    path = audit.ledger_path(out, "staging")
    lines = path.read_text().splitlines()
    newest = json.loads(lines[-1])
    (out / newest["record"]).unlink()
    path.write_text("\n".join(lines[:-1]) + "\n")


def test_announcements_carry_the_head_and_a_shortened_ledger_is_caught(
    outputs: Path, receiver: tuple[str, Any], tmp_path: Path
) -> None:
    from deploybook.core import anchors
    from deploybook.systems import notify

    url, store = receiver
    head = anchors.current(outputs, "staging")
    assert (head.length, head.head) == (
        3,
        audit.read_ledger(audit.ledger_path(outputs, "staging"))[-1]["hash"],
    )
    checks = notify.announce(
        [{"kind": "webhook", "url": url}],
        "[staging] rollout of v1.4.0 complete",
        "All steps done.",
        anchor=anchors.announcement(outputs, "staging"),
    )
    assert checks.ok, checks.to_text()
    text = store.webhook[-1]["body"]["text"]
    assert text.endswith(f"ledger staging length 3 head {head.head}")

    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps(store.as_dict()))  # as `deploybook sandbox messages` prints
    _drop_last(outputs)
    assert verify_cli(outputs).returncode == 0  # the chain alone cannot tell
    proc = verify_with(outputs, "--heads-file", str(heads))
    assert proc.returncode == 1, proc.stdout
    assert (
        "TAMPERED  staging: announced head: announced head staging length 3 head "
        f"{head.head[:12]}…, but the ledger has only 2 lines: it was shortened since"
    ) in proc.stdout
    assert "head      ledger staging length 2 head " in proc.stdout


def test_a_ledger_rewritten_with_recomputed_hashes_is_caught_by_expect_head(outputs: Path) -> None:
    head = audit.read_ledger(audit.ledger_path(outputs, "staging"))[-1]["hash"]
    first = _records(outputs)[0]
    first.write_text(first.read_text().replace('"n": 0', '"n": 9'))
    path = audit.ledger_path(outputs, "staging")
    entries = audit.read_ledger(path)
    previous = audit.GENESIS
    for entry in entries:  # an editor who knows how the chain is made
        entry["record_sha256"] = audit.sha256_file(outputs / entry["record"])
        entry["prev_hash"] = previous
        entry["hash"] = audit._entry_hash(entry)
        previous = entry["hash"]
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    plain = verify_cli(outputs)
    assert plain.returncode == 0 and "3 ledger entries verified" in plain.stdout

    proc = verify_with(outputs, "--expect-head", head)
    assert proc.returncode == 1
    assert "is in no ledger" in proc.stdout and f"expected  {head}" in proc.stdout
    proc = verify_with(outputs, "--expect-head", f"staging:3:{head}")
    assert proc.returncode == 1
    assert "is not in the ledger: it was rewritten since (hashes recomputed after an edit)" in (
        proc.stdout
    )
    assert verify_with(outputs, "--expect-head", f"staging:3:{previous}").returncode == 0


def test_a_deleted_ledger_is_reported(outputs: Path) -> None:
    audit.ledger_path(outputs, "staging").unlink()
    proc = verify_cli(outputs)
    assert proc.returncode == 1
    assert (
        "TAMPERED  staging: ledger.jsonl: ledger.jsonl is missing but 3 record(s) exist: deleted"
        in proc.stdout
    )


def test_a_deleted_environment_is_reported_from_its_announced_head(outputs: Path) -> None:
    head = audit.read_ledger(audit.ledger_path(outputs, "staging"))[-1]["hash"]
    import shutil

    shutil.rmtree(outputs / "staging")
    (outputs / "other").mkdir()
    proc = verify_with(outputs, "--expect-head", f"staging:3:{head}")
    assert proc.returncode == 1
    assert "staging/ledger.jsonl does not exist (deleted)" in proc.stdout


def test_verify_prints_the_head_it_checked_and_params_envs_without_ledger(outputs: Path) -> None:
    head = audit.read_ledger(audit.ledger_path(outputs, "staging"))[-1]["hash"]
    proc = verify_with(outputs, "--expect-head", head)
    assert proc.returncode == 0, proc.stdout
    assert f"head      ledger staging length 3 head {head}" in proc.stdout
    assert "note      production: a params file but no ledger (nothing recorded yet)" in proc.stdout


def test_a_malformed_expected_head_is_a_usage_error(outputs: Path) -> None:
    proc = verify_with(outputs, "--expect-head", "not-a-hash")
    assert proc.returncode == 2
    assert "--expect-head 'not-a-hash': expected a 64-hex hash" in proc.stderr
