"""approvals: headless sign-offs from parameters, the widget form, typed confirmations."""

from __future__ import annotations

import builtins

import pytest

from deploybook.core.checks import Status
from deploybook.errors import ConfigError
from deploybook.session import approvals
from deploybook.session.approvals import (
    check_signoffs,
    collect_signoffs,
    confirm,
    is_interactive,
)

ROLES = ["PM", "Web", "API", "Services", "QA"]
ALL = {
    "PM": "Pat Moss",
    "Web": "Wen Li",
    "API": "Ana Pires",
    "Services": "Sam Oyelaran",
    "QA": "Dana Lee",
}


@pytest.fixture(autouse=True)
def _no_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Headless code must never ask input(); make any call fail loudly."""

    def refuse(*_args: object) -> str:
        raise AssertionError("input() was called")

    monkeypatch.setattr(builtins, "input", refuse)


def _by_name(checks):  # type: ignore[no-untyped-def]
    return {c.name: c for c in checks}


def test_headless_all_signed_off_passes() -> None:
    signoffs = collect_signoffs(ROLES, ALL, operator="Omar Ops", interactive=False)
    assert [s.role for s in signoffs] == ROLES
    assert all(s.source == "parameter" and s.at.endswith("Z") for s in signoffs)
    checks = check_signoffs(
        signoffs, ROLES, "Omar Ops", require_all=True, require_distinct_approver=True
    )
    assert checks.ok and all(c.status is Status.PASS for c in checks)
    assert "approved by Dana Lee" in _by_name(checks)["sign-off QA"].evidence


@pytest.mark.parametrize("missing", [None, "", "  ", "TBD", "n/a"])
def test_missing_role_fails_when_required(missing: str | None) -> None:
    given = {**ALL, "QA": missing}
    signoffs = collect_signoffs(ROLES, given, operator="Omar Ops", interactive=False)
    checks = check_signoffs(
        signoffs, ROLES, "Omar Ops", require_all=True, require_distinct_approver=True
    )
    qa = _by_name(checks)["sign-off QA"]
    assert qa.status is Status.FAIL and qa.critical and not checks.ok
    assert "approvals={'QA': '<name>'}" in qa.evidence


def test_missing_role_only_warns_when_not_required() -> None:
    signoffs = collect_signoffs(ROLES, {"PM": "Pat Moss"}, operator="Omar", interactive=False)
    checks = check_signoffs(
        signoffs, ROLES, "Omar", require_all=False, require_distinct_approver=False
    )
    assert checks.ok
    assert _by_name(checks)["sign-off QA"].status is Status.WARN


def test_approver_equal_to_operator_fails_in_production() -> None:
    given = {**ALL, "API": "omar  ops"}  # case and spacing do not hide the operator
    signoffs = collect_signoffs(ROLES, given, operator="Omar Ops", interactive=False)
    checks = check_signoffs(
        signoffs, ROLES, "Omar Ops", require_all=True, require_distinct_approver=True
    )
    api = _by_name(checks)["sign-off API"]
    assert api.status is Status.FAIL and "approver must not be the operator" in api.evidence
    assert not checks.ok
    relaxed = check_signoffs(
        signoffs, ROLES, "Omar Ops", require_all=True, require_distinct_approver=False
    )
    assert relaxed.ok


@pytest.mark.parametrize(
    "disguise",
    [
        "Omar\u200b Ops",  # zero-width space
        "\u041emar Ops",  # Cyrillic capital O
        "\uff2f\uff4d\uff41\uff52 \uff2f\uff50\uff53",  # full-width letters
        "OMAR\u2060 \u00a0OPS\ufe0f",  # word joiner, no-break space, variation selector
    ],
    ids=["zero-width", "cyrillic", "full-width", "joiners"],
)
def test_a_disguised_operator_name_is_still_the_operator(disguise: str) -> None:
    """Issue 22 item 4: NFKC, case folding, invisible characters and lookalikes removed."""
    signoffs = collect_signoffs(
        ROLES, {**ALL, "QA": disguise}, operator="Omar Ops", interactive=False
    )
    checks = check_signoffs(
        signoffs, ROLES, "Omar Ops", require_all=True, require_distinct_approver=True
    )
    qa = _by_name(checks)["sign-off QA"]
    assert qa.status is Status.FAIL and "approver must not be the operator" in qa.evidence


def test_one_name_may_not_sign_two_roles() -> None:
    given = {
        **ALL,
        "QA": "PAT\u200b MOSS",  # PM is "Pat Moss"
    }
    signoffs = collect_signoffs(ROLES, given, operator="Omar Ops", interactive=False)
    checks = _by_name(
        check_signoffs(
            signoffs, ROLES, "Omar Ops", require_all=True, require_distinct_approver=True
        )
    )
    for role in ("PM", "QA"):
        assert checks[f"sign-off {role}"].status is Status.FAIL
        assert "one person may not sign two roles" in checks[f"sign-off {role}"].evidence
        assert "PM and QA" in checks[f"sign-off {role}"].evidence
    assert checks["sign-off API"].status is Status.PASS


def test_the_operator_is_shown_as_the_os_user_and_the_given_name() -> None:
    import getpass

    user = getpass.getuser()
    assert approvals.operator_label("Omar Ops") == f"{user} as 'Omar Ops'"
    assert approvals.operator_label("") == user
    signoffs = collect_signoffs(
        ROLES, {**ALL, "Web": user.upper()}, operator="Omar", interactive=False
    )
    web = _by_name(
        check_signoffs(signoffs, ROLES, "Omar", require_all=True, require_distinct_approver=True)
    )["sign-off Web"]
    assert web.status is Status.FAIL  # the OS user is the operator too, whatever name was given
    assert f"(operator {user} as 'Omar')" in web.evidence
    assert f"<p>operator: {user} as &#x27;Omar&#x27;</p>" in signoffs._repr_html_()


def test_distinct_approver_needs_a_named_operator() -> None:
    signoffs = collect_signoffs(ROLES, ALL, operator="", interactive=False)
    checks = check_signoffs(signoffs, ROLES, "", require_all=True, require_distinct_approver=True)
    assert _by_name(checks)["operator named"].status is Status.FAIL


def test_role_keys_are_case_insensitive_and_typos_are_flagged() -> None:
    given = {"pm": "Pat", "web": "Wen", "api": "Ana", "services": "Sam", "QAA": "Dana"}
    signoffs = collect_signoffs(ROLES, given, operator="Omar", interactive=False)
    checks = _by_name(
        check_signoffs(signoffs, ROLES, "Omar", require_all=True, require_distinct_approver=True)
    )
    assert checks["sign-off PM"].status is Status.PASS
    assert checks["sign-off QA"].status is Status.FAIL
    assert (
        checks["sign-off QAA"].status is Status.WARN and "typo" in checks["sign-off QAA"].evidence
    )


def test_approvals_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping of role to approver"):
        collect_signoffs(ROLES, ["Pat"], operator="Omar", interactive=False)  # type: ignore[arg-type]


def test_headless_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPLOYBOOK_HEADLESS", raising=False)
    assert is_interactive() is False  # plain pytest: no IPython kernel

    class FakeShell:
        kernel = object()

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeShell())
    assert is_interactive() is True
    monkeypatch.setenv("DEPLOYBOOK_HEADLESS", "1")
    assert is_interactive() is False
    monkeypatch.delenv("DEPLOYBOOK_HEADLESS")
    monkeypatch.setattr(approvals, "HEADLESS", True)
    assert is_interactive() is False
    # Auto-detected headless: the parameter is used and nothing waits.
    signoffs = collect_signoffs(ROLES, ALL, operator="Omar")
    assert len(signoffs) == 5 and signoffs.widget is None


def test_widget_form_records_when_clicked() -> None:
    signoffs = collect_signoffs(ROLES, {"PM": "Pat Moss"}, operator="Omar", interactive=True)
    assert signoffs.widget is not None and len(signoffs) == 0  # nothing until clicked
    rows = signoffs.widget.rows
    assert rows["PM"][0].value == "Pat Moss"  # pre-filled from the parameter
    for role, (name, ticked) in rows.items():
        if role != "QA":
            name.value = name.value or f"{role} Approver"
            ticked.value = True
    rows["QA"][0].value = "Dana Lee"  # named but not ticked: not an approval
    signoffs.widget.children[-2].click()
    assert {s.role for s in signoffs} == {"PM", "Web", "API", "Services"}
    assert all(s.source == "widget" for s in signoffs)
    checks = check_signoffs(
        signoffs, ROLES, "Omar", require_all=True, require_distinct_approver=True
    )
    assert _by_name(checks)["sign-off QA"].status is Status.FAIL


# --- confirm -------------------------------------------------------------------------------


def test_confirm_headless_compares_the_parameter() -> None:
    ok = confirm(
        "Restore overwrites americano_prod", "americano_prod", "americano_prod", interactive=False
    )
    assert ok and ok.as_check("confirm restore").status is Status.PASS
    wrong = confirm(
        "Restore overwrites americano_prod", "americano_prod", "americano", interactive=False
    )
    assert not wrong and "expected 'americano_prod'" in wrong.explain()
    absent = confirm("Restore overwrites americano_prod", "americano_prod", None, interactive=False)
    assert not absent and "pass the parameter" in absent.explain()
    assert absent.as_check("confirm restore").blocks


def test_confirm_interactive_uses_a_text_box() -> None:
    conf = confirm("Restore overwrites americano_prod", "americano_prod", None, interactive=True)
    assert conf.widget is not None and not conf
    conf.widget.value = "americano_prod"
    assert conf.confirmed


def test_confirm_needs_something_to_compare() -> None:
    with pytest.raises(ConfigError):
        confirm("Restore", "", "x", interactive=False)
