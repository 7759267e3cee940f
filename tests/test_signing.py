"""Signed sign-offs with real ``ssh-keygen`` keys: what passes, and each way one is void.

Records are written as a run leaves them (scraps in a notebook, a ledger line), approvals
are made by `deploybook approve` (the library call and the command), and the 03 gate's
view (`signing_gate.collect(...).checks`) is what is asserted: the checks by name and
their evidence, as the gate table shows them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from deploybook.core import audit
from deploybook.core.checks import Status
from deploybook.ops.approve import approve
from deploybook.session import signing, signing_gate
from deploybook.session.environment import load_environment_params

ROOT = Path(__file__).resolve().parent.parent
ENV, RELEASE = "production", "v1.4.0"
ROLES = ["PM", "Web", "API", "Services", "QA"]
PEOPLE = {"PM": "pat", "Web": "wendy", "API": "andy", "Services": "sam", "QA": "quinn"}
ARTIFACTS = {"commit": "c" * 40, "components": {"api": {"sha": "a" * 40}, "web": {"sha": "b" * 40}}}


def keygen(folder: Path, name: str) -> Path:
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@example", "-f", str(key)],
        check=True,
    )
    return key


def fake_record(outputs: Path, runbook: str, scraps: dict[str, Any], marker: str = "") -> Path:
    """A passing record holding ``scraps``, in the ledger, as a real run leaves it."""
    from scrapbook.api import _prepare_ipy_data_format, encoder_registry, scrap_to_payload
    from scrapbook.scraps import Scrap

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f"# scraps {marker}")
    for name, value in scraps.items():
        payload = scrap_to_payload(encoder_registry.encode(Scrap(name, value, "json")))
        data, metadata = _prepare_ipy_data_format(name, payload, "json")
        cell.outputs.append(nbformat.v4.new_output("display_data", data=data, metadata=metadata))
    nb.cells.append(cell)
    record = audit.record_path(outputs, ENV, RELEASE, runbook)
    record.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, record)
    audit.append_ledger(
        outputs,
        ENV,
        record=str(record.relative_to(outputs)),
        runbook=runbook,
        release=RELEASE,
        status="passed",
    )
    return record


def dry_run(outputs: Path, summary: str) -> Path:
    return fake_record(
        outputs, "02-migration-dry-run", {"summary": {"ok": True, "summary": summary}}, summary
    )


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Keys for five approvers, the operator and an outsider; production params allowing
    the approvers (and the operator, who also owns API); the 01 and 02 records."""
    keys = tmp_path / "keys"
    keys.mkdir()
    people = {name: keygen(keys, name) for name in [*PEOPLE.values(), "omar", "mallory"]}
    signers = {
        role: [people[who].with_suffix(".pub").read_text().strip()] for role, who in PEOPLE.items()
    }
    signers["API"].append(people["omar"].with_suffix(".pub").read_text().strip())
    signers["QA"].append(people["pat"].with_suffix(".pub").read_text().strip())
    params_file = tmp_path / "production.yaml"
    params_file.write_text(
        yaml.safe_dump(
            {
                "extends": str(ROOT / "params" / "production.yaml"),
                "approvals": {"allowed_signers": signers, "expiry": "24h"},
            }
        )
    )
    outputs = tmp_path / "outputs"
    fake_record(outputs, "01-preconditions", {"artifacts": ARTIFACTS})
    dry_run(outputs, "5 passed")
    home = tmp_path / "home"  # no ~/.ssh keys of the machine's user
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv(signing_gate.OPERATOR_KEY_ENV, str(people["omar"].with_suffix(".pub")))
    return {"keys": people, "params_file": params_file, "outputs": outputs}


def sign(world: dict[str, Any], role: str, who: str, now: datetime | None = None) -> Path:
    path, _ = approve(
        ENV,
        RELEASE,
        role,
        key=world["keys"][who],
        params_file=world["params_file"],
        outputs=world["outputs"],
        confirm=None,
        now=now,
        say=lambda _text: None,
    )
    return path


def gate(world: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    params = load_environment_params(world["params_file"])
    state = signing_gate.collect(params, ENV, RELEASE, "omar", outputs=world["outputs"])
    checks = state.checks(require_all=True, require_distinct=True)
    return checks, {c.name: c for c in checks}


def sign_all(world: dict[str, Any], **instead: str) -> None:
    for role, who in {**PEOPLE, **instead}.items():
        sign(world, role, who)


def test_five_valid_signatures_pass(world: dict[str, Any]) -> None:
    sign_all(world)
    checks, by_name = gate(world)
    assert checks.ok, checks.to_text()
    assert [c.name for c in checks] == [f"sign-off {r}" for r in ROLES]
    assert all(c.status is Status.PASS for c in checks)
    assert "signed by quinn@example (key SHA256:" in by_name["sign-off QA"].evidence
    assert "production/v1.4.0/" in by_name["sign-off QA"].evidence  # the dry-run record


def test_one_key_signing_two_roles_fails_both(world: dict[str, Any]) -> None:
    sign_all(world, QA="pat")  # pat's key is allowed for QA too, but not for two roles
    checks, by_name = gate(world)
    assert not checks.ok
    assert {c.name for c in checks.failed} == {"sign-off PM", "sign-off QA"}
    assert "the same key SHA256:" in by_name["sign-off QA"].evidence
    assert "signed PM and QA" in by_name["sign-off QA"].evidence


def test_a_signature_by_the_operators_key_is_void(world: dict[str, Any]) -> None:
    sign_all(world, API="omar")
    checks, by_name = gate(world)
    assert [c.name for c in checks.failed] == ["sign-off API"]
    assert "void: signed with the operator's key ($DEPLOYBOOK_OPERATOR_KEY)" in (
        by_name["sign-off API"].evidence
    )


def test_an_expired_approval_is_void(world: dict[str, Any]) -> None:
    sign_all(world)
    folder = signing.approvals_dir(ENV, RELEASE, world["outputs"])
    for path in folder.glob("Web-*"):
        path.unlink()
    sign(world, "Web", "wendy", now=datetime.now(UTC) - timedelta(days=2))
    checks, by_name = gate(world)
    assert [c.name for c in checks.failed] == ["sign-off Web"]
    assert "void: expired at " in by_name["sign-off Web"].evidence


def test_an_approval_of_an_earlier_dry_run_is_void(world: dict[str, Any]) -> None:
    sign_all(world)
    dry_run(world["outputs"], "5 passed, 1 migration changed")  # 02 re-run: a new record
    checks, by_name = gate(world)
    assert {c.name for c in checks.failed} == {f"sign-off {r}" for r in ROLES}
    why = by_name["sign-off PM"].evidence
    assert "approves dry-run record production/v1.4.0/" in why
    assert "02 ran again since; approve again" in why


def test_a_tampered_approval_fails_verification(world: dict[str, Any]) -> None:
    sign_all(world)
    path = sorted(signing.approvals_dir(ENV, RELEASE, world["outputs"]).glob("QA-*"))[0]
    text = path.read_text()
    path.write_text(_later(text))
    checks, by_name = gate(world)
    assert [c.name for c in checks.failed] == ["sign-off QA"]
    assert "void: tampered: the signature does not match the statement" in (
        by_name["sign-off QA"].evidence
    )


def _later(text: str) -> str:
    """The approval with its expiry moved a year on (the signature left as it was)."""
    head, _, rest = text.partition('"expires_at":"')
    return head + '"expires_at":"2099' + rest[4:]


def test_a_key_not_allowed_for_the_role_is_void(world: dict[str, Any]) -> None:
    sign_all(world, Services="mallory")
    checks, by_name = gate(world)
    assert [c.name for c in checks.failed] == ["sign-off Services"]
    assert "which is not allowed to sign Services" in by_name["sign-off Services"].evidence


def test_missing_roles_and_an_unknown_operator_key(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(signing_gate.OPERATOR_KEY_ENV)
    sign(world, "PM", "pat")
    checks, by_name = gate(world)
    assert by_name["operator's key known"].status is Status.FAIL
    assert "set DEPLOYBOOK_OPERATOR_KEY" in by_name["operator's key known"].evidence
    assert by_name["sign-off PM"].status is Status.PASS
    assert "deploybook approve --env production --release v1.4.0 --role QA" in (
        by_name["sign-off QA"].evidence
    )


def test_display_says_who_signed_what_and_why_void(world: dict[str, Any]) -> None:
    sign_all(world, API="omar")
    params = load_environment_params(world["params_file"])
    state = signing_gate.collect(params, ENV, RELEASE, "root as 'Omar'", outputs=world["outputs"])
    text, html = repr(state), state._repr_html_()
    assert text.startswith("operator: root as 'Omar'\nenvironment production, release v1.4.0")
    assert "QA: signed by quinn@example (SHA256:" in text
    assert "API: void by omar@example" in text and "operator's key" in text
    assert "<b>void</b>" in html and "<b>signed</b>" in html


def test_the_approve_command_signs_and_stores(world: dict[str, Any]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    proc = subprocess.run(
        [sys.executable, "-m", "deploybook", "approve", "--env", ENV, "--release", RELEASE,
         "--role", "qa", "--key", str(world["keys"]["quinn"]), "--params-file",
         str(world["params_file"]), "--outputs", str(world["outputs"]), "--print"],
        input="QA\n", capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "You approve, as QA (quinn@example):" in proc.stdout
    assert "dry run:     production/v1.4.0/" in proc.stdout
    assert "-----BEGIN SSH SIGNATURE-----" in proc.stdout
    _, by_name = gate(world)
    assert by_name["sign-off QA"].status is Status.PASS

    refused = subprocess.run(
        [sys.executable, "-m", "deploybook", "approve", "--env", ENV, "--release", RELEASE,
         "--role", "PM", "--key", str(world["keys"]["pat"]), "--params-file",
         str(world["params_file"]), "--outputs", str(world["outputs"])],
        input="yes\n", capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "not approved: the role PM was not typed" in refused.stderr


def test_03_gate_reads_the_approval_files(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runbook 03's own cells on a production params file: the sign-off cell shows the
    state, the gate table carries one check per role (a dry run softens them to warnings)."""
    from deploybook.runbooks.rollout import cells, gates
    from deploybook.session import runbook as session

    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(world["outputs"]))
    sign_all(world, API="omar")
    run = session.start(
        "03-rollout", env=ENV, release=RELEASE, previous_release="v1.3.0",
        params_file=str(world["params_file"]), operator="Omar", execute=False, run_id="t",
    )  # fmt: skip
    state = cells.signoffs(run, {})
    assert isinstance(state, signing_gate.SignedApprovals)
    assert "API: void by omar@example" in capsys.readouterr().out
    result = gates.check_gates(run, state, "production")
    by_name = {c.name: c for c in result.checks}
    assert by_name["sign-off QA"].status is Status.PASS
    assert by_name["sign-off API"].status is Status.WARN
    assert by_name["sign-off API"].evidence.startswith(
        "execute=True would refuse: void: signed with the operator's key"
    )
    assert {r["role"] for r in result.signoffs} == set(ROLES)
    assert {r["role"]: r["name"] for r in result.signoffs}["API"] == ""  # void: not an approver
    assert {r["role"]: r["name"] for r in result.signoffs}["QA"] == "quinn@example"
