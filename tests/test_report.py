"""The release overview and the reviewer HTML, built from records of real runbook runs.

Runbook 01 runs for real (papermill, the shared sandbox) into an outputs folder of this
module's own, once passing and once with a service down, so the page has both statuses.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sandbox_fixtures import CANARIES, files_containing

from deploybook.core import audit
from deploybook.errors import AuditError, ConfigError
from deploybook.ops.runner import run_runbook
from deploybook.sandbox import stack
from deploybook.session import overview as report

RELEASE = "v1.4.0"
PARAMS = {"previous_release": "v1.3.0", "rate_limits_reviewed_by": "Sam Services", "operator": "ci"}


@pytest.fixture(scope="module")
def release(sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict:
    outputs = tmp_path_factory.mktemp("report-outputs")
    passed = run_runbook("01-preconditions", "sandbox", RELEASE, dict(PARAMS), outputs=outputs)
    stack.admin("/admin/sandbox/ocr/fault", {"down": True})
    try:
        failed = run_runbook(
            "01-preconditions", "sandbox", RELEASE, {**PARAMS, "operator": "dana"}, outputs=outputs
        )
    finally:
        stack.admin("/admin/sandbox/ocr/fault", method="DELETE")
    assert (passed.status, failed.status) == ("passed", "failed"), failed.error
    return {"outputs": outputs, "passed": passed, "failed": failed}


def rows(page: str) -> list[str]:
    return re.findall(r"<tr class='db-row.*?</tr>", page, flags=re.S)


def hrefs(fragment: str) -> list[str]:
    return [unquote(h) for h in re.findall(r'href="([^"]+)"', fragment)]


def test_overview_lists_every_record_in_order_with_links(release) -> None:
    outputs, passed, failed = release["outputs"], release["passed"], release["failed"]
    path = report.build_report("sandbox", RELEASE, outputs)
    assert path == outputs / "sandbox" / RELEASE / "overview.html"
    page = path.read_text(encoding="utf-8")

    first, second = rows(page)
    assert "01-preconditions" in first and "✓ passed" in first and "<td>ci</td>" in first
    assert "✗ failed" in second and "<td>dana</td>" in second
    assert "GateFailed" in second and "ocr health endpoint answering" in second
    assert re.search(r"\d+ pass", first)  # the record's `summary` scrap
    assert "2 record(s): 1 failed, 1 passed" in page
    # Start, end and duration come from the ledger.
    entry = audit.read_ledger(audit.ledger_path(outputs, "sandbox"))[0]
    assert entry["started_at"][:10] in first and f"{entry['duration_s']:.1f} s" in first

    # Links are relative to the page and point at each record's HTML and notebook.
    for row, result in ((first, passed), (second, failed)):
        links = hrefs(row)
        assert result.html.name in links and result.record.name in links
        assert all((path.parent / link).is_file() for link in links)
    # Self-contained: inline CSS, the timeline embedded as a PNG, no external resource.
    png = re.search(r"src='data:image/png;base64,([^']+)'", page)
    assert png and base64.b64decode(png.group(1)).startswith(b"\x89PNG")
    assert "deployment window 60 min, rollback window 60 min" in page
    assert "Schedule from params/sandbox.yaml" in page
    assert not re.search(r"(src|href)=[\"']https?:", page)


def test_overview_is_scrubbed_and_review_pages_are_linked(release) -> None:
    outputs = release["outputs"]
    path = report.build_report("sandbox", RELEASE, outputs, review=True)
    page = path.read_text(encoding="utf-8")
    for result in (release["passed"], release["failed"]):
        review = result.record.with_suffix(".review.html")
        assert review.is_file() and review.name in hrefs(page)
    assert files_containing(outputs, list(CANARIES.values())) == []
    # Review pages are derived files: the ledger still verifies.
    assert audit.verify(outputs)[1] == []


def test_show_overview_links_relative_to_the_notebook(release, monkeypatch) -> None:
    outputs, passed = release["outputs"], release["passed"]
    monkeypatch.setenv("DEPLOYBOOK_RECORD", str(passed.record))  # a headless run's record
    shown = report.show_overview("sandbox", RELEASE, outputs)
    assert "Release overview: v1.4.0 on sandbox" in shown.data
    assert passed.html.name in hrefs(shown.data) and "overview.html" in hrefs(shown.data)

    monkeypatch.delenv("DEPLOYBOOK_RECORD")
    monkeypatch.chdir(outputs)  # JupyterLab: the kernel runs in the notebook's folder
    shown = report.show_overview("sandbox", RELEASE, outputs)
    assert f"sandbox/{RELEASE}/{passed.html.name}" in hrefs(shown.data)


def test_show_overview_before_any_record(tmp_path: Path) -> None:
    shown = report.show_overview("sandbox", RELEASE, tmp_path)
    assert "No records yet" in shown.data
    assert not (tmp_path / "sandbox" / RELEASE / "overview.html").exists()


def test_unknown_release_or_bad_names_are_clear_errors(release) -> None:
    with pytest.raises(AuditError, match=r"no records of v9\.9\.9 .*recorded there: v1\.4\.0"):
        report.build_report("sandbox", "v9.9.9", release["outputs"])
    with pytest.raises(ConfigError, match="SemVer"):
        report.build_report("sandbox", "1.4", release["outputs"])
    with pytest.raises(ConfigError, match="not a valid name"):
        report.build_report("../sandbox", RELEASE, release["outputs"])


def test_cli_report(release, capsys) -> None:
    from deploybook.ops import cli

    if not hasattr(cli, "cmd_report"):
        pytest.skip("`deploybook report` is not wired into cli.py yet")
    outputs = release["outputs"]
    argv = ["report", "--env", "sandbox", "--release", RELEASE, "--outputs", str(outputs)]
    assert cli.main(argv) == 0
    assert str(outputs / "sandbox" / RELEASE / "overview.html") in capsys.readouterr().out
    assert (
        cli.main(["report", "--env", "sandbox", "--release", "v9.9.9", "--outputs", str(outputs)])
        == 1
    )
    assert "no records of v9.9.9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("scrap", "expected"),
    [
        (None, []),
        (
            [
                {"role": "PM", "name": "Ann Lee", "at": "2026-01-01T00:00:00Z", "source": "widget"},
                {"role": "QA", "name": "Dana", "at": "2026-01-01T00:00:00Z", "source": "parameter"},
            ],
            ["PM: Ann Lee", "QA: Dana"],
        ),
        ({"PM": "Ann Lee", "QA": ""}, ["PM: Ann Lee"]),
    ],
)
def test_approvers_from_signoffs_scrap(scrap, expected) -> None:
    assert report.approvers(scrap) == expected


def test_reviewer_html_hides_code_but_shows_checks_and_plots(release) -> None:
    record = release["passed"].record
    full = release["passed"].html.read_text(encoding="utf-8")
    review = audit.render_html(record, no_input=True)
    assert review.name.endswith(".review.html")
    text = review.read_text(encoding="utf-8")
    assert "hl-ipython3" in full and "hl-ipython3" not in text  # code, highlighted
    for page in (full, text):
        assert "You are here: 01-preconditions" in page
        assert "deploybook-checks" in page and "secret OPENAI_API_KEY configured" in page
        assert "data:image/png;base64," in page  # the schedule plot
        assert "Preconditions" in page  # the markdown quoting the plan stays


def test_widget_state_is_stored_and_embedded_in_the_html(tmp_path: Path) -> None:
    """papermill (nbclient, store_widget_state=True) keeps the widgets' state in the record's
    metadata and nbconvert embeds it, so the sign-off form renders without a kernel."""
    import papermill

    source, record = tmp_path / "form.ipynb", tmp_path / "record.ipynb"
    nb = new_notebook(
        cells=[
            new_code_cell("approvals = {}", metadata={"tags": ["parameters"]}),
            new_code_cell(
                "from deploybook.session import approvals as ap\n"
                "s = ap.collect_signoffs(['PM', 'QA'], approvals, 'ci', interactive=True)"
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, source)
    papermill.execute_notebook(
        str(source), str(record), parameters={"approvals": {"PM": "Ann Lee"}}, progress_bar=False
    )
    executed = json.loads(record.read_text())
    state = executed["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]
    models = {m["model_name"] for m in state["state"].values()}
    assert {"VBoxModel", "TextModel", "CheckboxModel", "ButtonModel"} <= models
    assert any(m["state"].get("value") == "Ann Lee" for m in state["state"].values())
    page = audit.render_html(record).read_text(encoding="utf-8")
    assert 'type="application/vnd.jupyter.widget-state+json"' in page
    assert 'type="application/vnd.jupyter.widget-view+json"' in page
