"""The sandbox's throwaway approvers (sandbox/signers.py): what `sandbox up` makes and what
params see. No stack: the keys are files in a state dir."""

from __future__ import annotations

import stat
from pathlib import Path

from deploybook.config.approvals import PUBLIC_KEY
from deploybook.sandbox import signers

ROLES = ["PM", "Web", "API", "Services", "QA"]


def test_roles_come_from_production_params() -> None:
    assert signers.production_roles() == ROLES
    assert signers.variable("Services") == "DEPLOYBOOK_SANDBOX_SIGNER_SERVICES"


def test_keys_made_once_private_halves_0600_params_see_public_keys_only(tmp_path: Path) -> None:
    made = signers.ensure(tmp_path)
    assert list(made) == ROLES and list(signers.approvers(tmp_path)) == ROLES
    privates = [*made.values(), signers.operator_key(tmp_path)]
    for key in privates:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = {key: key.read_bytes() for key in privates}
    signers.ensure(tmp_path)  # a reused state dir keeps its keys
    assert {key: key.read_bytes() for key in privates} == before

    values = signers.environment(tmp_path)
    assert set(values) == {*map(signers.variable, ROLES), signers.OPERATOR_KEY_ENV}
    for role in ROLES:
        assert PUBLIC_KEY.match(values[signers.variable(role)])
    assert values[signers.OPERATOR_KEY_ENV].endswith(".pub")
    secret_lines = [line for key in privates for line in key.read_text().splitlines()[1:-1]]
    assert not any(line in value for line in secret_lines for value in values.values())
    assert len(set(values.values())) == len(values)  # one key per role, the operator's apart


def test_no_keys_no_variables(tmp_path: Path) -> None:
    assert signers.environment(tmp_path) == {} and signers.keys(tmp_path) == {}
