"""04 checks by default that every service runs the release (after 03) or what 05 reverted
it to (issue 16, item 9): the pure decision, then the records of a real ledger against the
shared sandbox's stand-ins (at the previous release), then 04 through papermill."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
import scrapbook as sb

from deploybook.core import audit
from deploybook.core.checks import Status
from deploybook.runbooks.smoke import cells as smoke
from deploybook.runbooks.smoke.expected import NAME, decide
from deploybook.sandbox import stack
from deploybook.session import runbook as session
from deploybook.session import scraps

ENV, RELEASE, PREVIOUS = "sandbox", stack.RELEASE, stack.PREVIOUS
ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("api", "web", "chatmock", "ocr")
COMPLETED = scraps.RolloutOutcome(stage="staging", status="completed", execute=True)
REVERTED = scraps.RollbackOutcome(
    dry_run=False, reverted=[{"service": s, "from": RELEASE, "to": PREVIOUS} for s in SERVICES]
)


# --- the decision (pure) ---------------------------------------------------------------------


def test_the_parameter_overrides_every_record() -> None:
    got = decide(RELEASE, "v1.2.0", ("r3", COMPLETED), ("r5", REVERTED))
    assert (got.version, got.source, got.assumed) == ("v1.2.0", "parameter expect_version", False)


def test_after_a_rollout_the_release_after_a_rollback_what_it_reverted_to() -> None:
    after_03 = decide(RELEASE, None, ("03.ipynb", COMPLETED), None)
    assert after_03.version == RELEASE and "03-rollout record 03.ipynb" in after_03.source
    assert after_03.check().status is Status.PASS
    mixed = REVERTED.model_copy(
        update={"reverted": [*REVERTED.reverted[:3], {"service": "ocr", "to": "v1.1.0"}]}
    )
    after_05 = decide(RELEASE, None, ("03.ipynb", COMPLETED), ("05.ipynb", mixed))
    assert after_05.of("api") == PREVIOUS and after_05.of("ocr") == "v1.1.0"
    assert "05-rollback record 05.ipynb" in after_05.source


def test_without_a_record_the_release_itself_with_a_note() -> None:
    got = decide(RELEASE, None, None, None, ENV)
    check = got.check()
    assert got.version == RELEASE and got.assumed
    assert check.status is Status.WARN and not check.critical
    assert f"no executed 03-rollout or 05-rollback record of {ENV} {RELEASE}" in check.evidence


# --- records in a real ledger, the shared sandbox's services -------------------------------------


def _record(outputs: Path, runbook: str, model: Any) -> None:
    """A record glueing ``model`` as the runbook does (`session.glued`), and its ledger line."""
    payload = {
        "name": model.NAME,
        "data": model.data(),
        "encoder": "json",
        "version": 1,
        "schema_version": model.SCHEMA_VERSION,
    }
    metadata = {"scrapbook": {"name": model.NAME, "data": True, "display": False}}
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("# scraps")
    output = {scraps.SCRAP_MIMETYPE: payload}
    cell.outputs.append(nbformat.v4.new_output("display_data", data=output, metadata=metadata))
    nb.cells.append(cell)
    path = audit.record_path(outputs, ENV, RELEASE, runbook)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    audit.append_ledger(
        outputs,
        ENV,
        record=str(path.relative_to(outputs)),
        runbook=runbook,
        release=RELEASE,
        status="passed",
        started_at=audit.utc_stamp(),
    )


def _smoke_run() -> session.Runbook:
    return session.start(
        "04-smoke",
        env=ENV,
        release=RELEASE,
        previous_release=PREVIOUS,
        params_file=str(ROOT / "params" / f"{ENV}.yaml"),
        operator="ci",
    )


def _health(run: session.Runbook, expected: Any) -> dict[str, Any]:
    return {c.name: c for c in smoke.run_suite(run, expected) if c.name.endswith(" health")}


def test_records_decide_what_every_service_must_run(
    sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("DEPLOYBOOK_OUTPUTS", str(outputs))
    assert {
        stack.admin("/admin/state", method="GET")["envs"][ENV][s]["version"] for s in SERVICES
    } == {PREVIOUS}

    run = _smoke_run()  # no record: the release, assumed; the stand-ins run PREVIOUS
    expected = smoke.expected_version(run, "")
    assert expected is not None and expected.assumed and expected.version == RELEASE
    health = _health(run, expected)
    assert all(health[f"{s} health"].status is Status.FAIL for s in SERVICES)
    assert f"reports version '{PREVIOUS}', expected '{RELEASE}'" in health["api health"].evidence

    _record(outputs, "03-rollout", scraps.RolloutOutcome(stage="staging", status="planned"))
    run = _smoke_run()  # a dry-run rollout deployed nothing: still assumed
    assert smoke.expected_version(run, "").assumed

    _record(outputs, "03-rollout", COMPLETED)
    run = _smoke_run()
    expected = smoke.expected_version(run, "")
    assert not expected.assumed and expected.version == RELEASE
    assert {c.name: c.status for c in run.checks}[NAME] is Status.PASS

    _record(outputs, "05-rollback", REVERTED)
    run = _smoke_run()  # the rollback came later: what it reverted each service to
    expected = smoke.expected_version(run, "")
    assert expected.version == PREVIOUS and "05-rollback record" in expected.source
    health = _health(run, expected)
    assert all(health[f"{s} health"].status is Status.PASS for s in SERVICES), health

    _record(outputs, "03-rollout", COMPLETED)
    run = _smoke_run()  # rolled out again after the rollback: the release again
    assert smoke.expected_version(run, "").version == RELEASE
    run = _smoke_run()  # the parameter still overrides
    assert smoke.expected_version(run, PREVIOUS).source == "parameter expect_version"


def test_04_fails_by_default_naming_service_expected_and_running_version(sandbox) -> None:
    """No record of a rollout here, stand-ins at the previous release: 04's health checks
    fail on the release it assumed, each naming the service and both versions."""
    from deploybook.ops.runner import run_runbook

    parameters = {"operator": "ci", "watch_window_s": 2}
    result = run_runbook("04-smoke", ENV, RELEASE, parameters, html=False)
    assert result.status == "failed"
    checks = {c["name"]: c for c in sb.read_notebook(str(result.record)).scraps["checks"].data}
    assert checks[NAME]["status"] == "warn"
    for service in SERVICES:
        health = checks[f"{service} health"]
        assert health["status"] == "fail"
        assert f"reports version '{PREVIOUS}', expected '{RELEASE}'" in health["evidence"]
