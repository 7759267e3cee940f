"""Issue 21: the lead's walkthrough — re-runs replace, prepared copies, abandoned copies,
clean templates. (The walk itself, in JupyterLab, is tests/test_browser.py.)"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploybook.core import audit
from deploybook.core.checks import Check, Checks, Status, gate
from deploybook.ops.opener import prepare_copy
from deploybook.runbooks.smoke.spotchecks import spot_check_results, spot_checks
from deploybook.session import approvals, records, seal
from deploybook.session.overview import load_overview
from deploybook.session.runbook import Runbook

ROOT = Path(__file__).resolve().parent.parent
RELEASE = "v1.4.0"
ROLES = ["PM", "Web", "API", "Services", "QA"]
DEPLOYBOOK = str(Path(sys.executable).parent / "deploybook")


def _run(env: str, name: str = "03-rollout") -> Runbook:
    return Runbook(
        name=name, env=env, release=RELEASE, params_file=f"params/{env}.yaml", operator="Lee Lead"
    )


def test_a_rerun_replaces_its_checks_in_place() -> None:
    checks = Checks([Check("a", "1", Status.PASS), Check("b", "1", Status.FAIL)])
    checks.replace([Check("b", "1", Status.PASS)], lambda c: c.name == "b")
    assert [(c.name, c.status) for c in checks] == [("a", "pass"), ("b", "pass")]
    assert checks.ok


def test_03_signoffs_given_after_a_refusal_leave_no_stale_failure() -> None:
    """Production gate refused for missing sign-offs; the lead signs, re-runs the cell."""
    run = _run("production")
    empty = approvals.collect_signoffs(ROLES, {}, run.operator, interactive=False)
    run.record(approvals.check_signoffs(empty, ROLES, run.operator, True, True))
    with pytest.raises(Exception, match="5 critical check"):
        gate(run.checks)
    given = {role: f"{role} Approver" for role in ROLES}
    signed = approvals.collect_signoffs(ROLES, given, run.operator, interactive=False)
    run.record(approvals.check_signoffs(signed, ROLES, run.operator, True, True))
    assert gate(run.checks).ok
    assert sorted(c.name for c in run.checks) == sorted(f"sign-off {r}" for r in ROLES)


def test_04_spot_checks_confirmed_on_a_rerun_pass_the_gate() -> None:
    run = _run("production", "04-smoke")
    if not run.params.spot_checks:
        pytest.skip("production params configure no spot checks")
    run.record(spot_check_results(spot_checks(run, None, interactive=False)))
    assert not run.checks.ok
    everything = {item: "Quinn QA" for item in run.params.spot_checks}
    run.record(spot_check_results(spot_checks(run, everything, interactive=False)))
    assert gate(run.checks).ok
    assert len(run.checks) == len(run.params.spot_checks)


def test_05_restore_confirmed_on_a_rerun_leaves_no_refusal() -> None:
    """'restore confirmed … nothing was changed' must not outlive the confirmed restore."""
    run = _run("production", "05-rollback")
    prompt = "Type the name of the database to overwrite"
    wrong = approvals.confirm(prompt, "americano", "americano-prod", interactive=False)
    run.record(Check("restore confirmed", "16", Status.FAIL, f"refused: {wrong.explain()}"))
    right = approvals.confirm(prompt, "americano", "americano", interactive=False)
    run.record(Check("restore confirmed", "16", Status.PASS, right.explain()))
    assert gate(run.checks).ok
    assert [c.evidence for c in run.checks] == ["confirmed: typed 'americano'"]


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "outputs"
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(out))
    return out


def test_open_prepares_a_copy_and_an_abandoned_one_is_reported(outputs: Path) -> None:
    template = ROOT / "runbooks" / "03-rollout.ipynb"
    before = template.read_bytes()
    copy, entry = prepare_copy(
        "03", "staging", RELEASE, {"execute": True, "operator": "Lee Lead"}, outputs=outputs
    )
    assert copy.parent == outputs / "staging" / RELEASE and copy.name.endswith("-03-rollout.ipynb")
    assert (entry["status"], entry["copy"]) == ("open", str(copy.relative_to(outputs)))
    assert "record" not in entry and "record_sha256" not in entry
    notebook = json.loads(copy.read_text())
    injected = next(c for c in notebook["cells"] if "injected-parameters" in c["metadata"]["tags"])
    assert 'env = "staging"' in "".join(injected["source"])
    assert "execute = True" in "".join(injected["source"])
    assert template.read_bytes() == before

    # Never sealed: reported as open/abandoned, never a record and never passed.
    verify = subprocess.run(
        [DEPLOYBOOK, "audit", "verify", "--outputs", str(outputs)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"OPEN      staging: {entry['copy']}: open/abandoned copy, never sealed" in verify.stdout
    assert records.find("staging", RELEASE, "03-rollout", outputs=outputs) is None
    rows = load_overview("staging", RELEASE, outputs).rows
    assert [(r.runbook, r.status) for r in rows] == [("03-rollout", "open/abandoned")]

    # Sealed (as the gate cell does): no longer open.
    sealed = seal.sealed_path(copy, datetime.now(UTC))
    sealed.write_text(copy.read_text())
    audit.append_ledger(
        outputs,
        "staging",
        record=str(sealed.relative_to(outputs)),
        copy=entry["copy"],
        runbook="03-rollout",
        release=RELEASE,
        status="passed",
        mode="interactive",
    )
    assert audit.unsealed(outputs) == []
    assert audit.verify(outputs)[1] == []
    found = records.find("staging", RELEASE, "03-rollout", passed=True, outputs=outputs)
    assert found is not None and found.path == sealed


def test_open_refuses_a_bad_parameter_before_writing(outputs: Path) -> None:
    opened = subprocess.run(
        [DEPLOYBOOK, "open", "03", "--env", "staging", "--release", RELEASE, "-p", "nope", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert opened.returncode == 2 and "unknown parameter 'nope'" in opened.stderr
    assert not outputs.exists()


def _parameters_cell(source: str) -> dict[str, str]:
    """name -> default source of a runbook's parameters cell in its jupytext source."""
    cell = source.split('tags=["parameters"]', 1)[1].split("# %%", 1)[0].split("\n", 1)[1]
    return {
        node.targets[0].id: ast.unparse(node.value)
        for node in ast.parse(cell).body
        if isinstance(node, ast.Assign)
    }


@pytest.mark.parametrize("runbook", sorted(p.stem for p in (ROOT / "runbooks").glob("*.ipynb")))
def test_committed_runbook_is_a_clean_template(runbook: str) -> None:
    """nbstripout-style: a committed runbook holds only the defaults of its jupytext source
    and the nbval references of a default dry run on the sandbox — never a lead's session."""
    notebook = json.loads((ROOT / "runbooks" / f"{runbook}.ipynb").read_text())
    defaults = _parameters_cell((ROOT / "runbooks" / f"{runbook}.py").read_text())
    assert defaults.get("execute", "False") == "False" and defaults.get("env") == "'sandbox'"
    assert "papermill" not in notebook["metadata"] and "deploybook" not in notebook["metadata"]
    cells = notebook["cells"]
    assert not any("injected-parameters" in c["metadata"].get("tags", []) for c in cells)
    (params,) = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert not params.get("outputs"), "the parameters cell carries outputs"
    on_disk = {
        node.targets[0].id: ast.unparse(node.value)
        for node in ast.parse("".join(params["source"])).body
        if isinstance(node, ast.Assign)
    }
    assert on_disk == defaults, "the parameters cell differs from its jupytext source"
    shown = json.dumps([c.get("outputs", []) for c in cells])
    assert "EXECUTE: this run changes systems" not in shown
    assert "sealed:" not in shown and "waiting for you at step" not in shown


def test_answered_forms_keep_their_answers_when_their_cell_runs_again() -> None:
    """Run All recreates every form; what the lead recorded in this kernel stays."""
    roles = ["PM", "QA"]
    form = approvals.collect_signoffs(roles, {}, "Kept Lead", interactive=True)
    name, ticked = form.widget.rows["PM"]
    name.value, ticked.value = "Pat PM", True
    form.widget.record()
    again = approvals.collect_signoffs(roles, {}, "Kept Lead", interactive=True)
    assert [(s.role, s.name) for s in again] == [("PM", "Pat PM")]
    assert again.widget.rows["PM"][0].value == "Pat PM" and again.widget.rows["PM"][1].value

    box = approvals.confirm("Type the database", "kept-db", None, interactive=True)
    box.widget.value = "kept-db"
    box.confirm()  # the Confirm button
    assert approvals.confirm("Type the database", "kept-db", None, interactive=True).confirmed


def _in_kernel(code: str, notebook: Path) -> tuple[str, list[dict]]:
    """Run ``code`` in a real kernel started as JupyterLab starts one for ``notebook``;
    returns the reply status and the output messages."""
    import os

    from jupyter_client.manager import start_new_kernel

    env = {k: v for k, v in os.environ.items() if k not in ("DEPLOYBOOK_HEADLESS",)}
    env["JPY_SESSION_NAME"] = str(notebook)
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))
    try:
        outputs: list[dict] = []
        reply = kc.execute_interactive(
            code, timeout=120, output_hook=lambda m: outputs.append(m), store_history=False
        )
        return reply["content"]["status"], outputs
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_committed_runbook_opened_by_a_person_is_a_template() -> None:
    """Banner, and execute=True refused as a short panel, not a traceback."""
    template = ROOT / "runbooks" / "03-rollout.ipynb"
    start = (
        "from deploybook import start\n"
        "run = start('03-rollout', env='staging', release='v1.4.0', "
        "params_file='params/staging.yaml', operator='Lee Lead', execute={})\n"
    )
    status, outputs = _in_kernel(start.format(False) + "run", template)
    assert status == "ok"
    shown = json.dumps([m["content"] for m in outputs], ensure_ascii=False)
    assert "template — open a prepared copy with" in shown and "deploybook open 03-rollout" in shown

    status, outputs = _in_kernel(start.format(True), template)
    assert status == "error"
    errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
    assert [e["ename"] for e in errors] == ["ConfigError"]
    assert errors[0]["traceback"] == [f"ConfigError: {errors[0]['evalue']}"]  # one line
    assert "execute=True is refused here" in errors[0]["evalue"]
    panels = [
        m["content"]
        for m in outputs
        if m["msg_type"] == "display_data" and "deploybook-refusal" in str(m["content"])
    ]
    assert panels and "Traceback" in panels[0]["metadata"]["deploybook"]["traceback"]


def test_04_stops_at_an_unanswered_production_spot_check_form() -> None:
    """Run All waits for the form rather than sealing a gate nobody answered; once Record
    was clicked (even with an item left unticked, a deliberate 'not confirmed') it goes on."""
    from deploybook.runbooks.smoke.cells import record_spot_checks
    from deploybook.session.confirm import WaitingForLead

    run = _run("production", "04-smoke")
    if not run.params.spot_checks:
        pytest.skip("production params configure no spot checks")
    form = spot_checks(run, None, interactive=True)
    with pytest.raises(WaitingForLead, match="waiting for you at the manual spot checks"):
        record_spot_checks(run, form)
    form.widget.who.value = "Quinn QA"
    first = next(iter(form.widget.rows.values()))
    first.value = True
    form.widget.record()
    checks = record_spot_checks(run, form)
    assert [c.status for c in checks].count("pass") == 1
    again = spot_checks(run, None, interactive=True)  # Run All recreates the form
    assert again.recorded and len(again) == 1
