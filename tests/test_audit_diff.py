"""``deploybook audit diff``: what truly differs between two records.

The comparison itself on plain data (normalised evidence, status changes, one-sided
checks, parameters and facts), then real records: runbook 02 run by papermill on the
sandbox's staging and production environments, and 04 passing then failing once the API
answers 503 — compared by the command as a reviewer runs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deploybook.core.diff import Normaliser, RecordDiff, diff_checks, diff_facts
from deploybook.core.render.diff import diff_html, diff_text

ROOT = Path(__file__).resolve().parent.parent


def check(name: str, status: str, evidence: str) -> dict[str, str]:
    return {"name": name, "status": status, "evidence": evidence}


def test_volatile_text_and_own_names_do_not_count() -> None:
    a, b = Normaliser(["sandbox"]), Normaliser(["sandbox-production"])
    left = [
        check(
            "snapshot taken",
            "pass",
            "sandbox-v1.4.0-20261201T203512123456Z.dump, sha256 "
            + "ab" * 32
            + " in 1.24 s at 2026-12-01T20:35:12Z",
        ),
        check("restore", "pass", "scratch restore deploybook_scratch_sandbox on 127.0.0.1:5432"),
        check("health api", "pass", "200 in 12 ms"),
    ]
    right = [
        check(
            "snapshot taken",
            "pass",
            "sandbox-production-v1.4.0-20261201T203633000001Z.dump, sha256 "
            + "cd" * 32
            + " in 2.5 s at 2026-12-01T20:36:33Z",
        ),
        check(
            "restore",
            "pass",
            "scratch restore deploybook_scratch_sandbox_production on 127.0.0.1:6543",
        ),
        check("health api", "pass", "200 in 40 ms"),
    ]
    changes, same = diff_checks(left, right, a, b)
    assert (changes, same) == ([], 3)


def test_status_evidence_and_one_sided_checks_are_reported() -> None:
    same = Normaliser()
    left = [check("watch api", "pass", "5xx 0.0%"), check("gone", "warn", "x")]
    right = [check("watch api", "fail", "5xx 100.0% for 30 s"), check("new", "pass", "y")]
    changes, unchanged = diff_checks(left, right, same, same)
    assert unchanged == 0
    assert [(c.name, c.kind, c.a_status, c.b_status) for c in changes] == [
        ("watch api", "status", "pass", "fail"),
        ("gone", "only in A", "warn", ""),
        ("new", "only in B", "", "pass"),
    ]
    evidence, _ = diff_checks(
        [check("rows", "pass", "users 3")], [check("rows", "pass", "users 4")], same, same
    )
    assert [(c.kind, c.a_evidence, c.b_evidence) for c in evidence] == [
        ("evidence", "users 3", "users 4")
    ]


def test_parameters_and_facts_show_leaves_that_differ() -> None:
    same = Normaliser()
    facts = diff_facts(
        "fact",
        {"artifacts": {"components": {"api": {"sha": "1" * 40}, "web": {"sha": "w"}}}},
        {"artifacts": {"components": {"api": {"sha": "1" * 40}, "web": {"sha": "x"}}}},
        same,
        same,
    )
    assert [(f.key, f.a, f.b) for f in facts] == [("artifacts.components.web.sha", "w", "x")]


def test_rendering_names_both_sides_and_each_change() -> None:
    left = [check("watch api", "pass", "ok")]
    right = [check("watch api", "fail", "SLA breached: 5xx 100%")]
    changes, same = diff_checks(left, right, Normaliser(), Normaliser())
    d = RecordDiff("sandbox/v1.4.0/a.ipynb", "sandbox/v1.4.0/b.ipynb", checks=changes)
    text = diff_text(d)
    assert text.splitlines()[0].startswith("A: sandbox/v1.4.0/a.ipynb")
    assert "watch api" in text and "pass   fail" in text and "SLA breached: 5xx 100%" in text
    assert [c.name for c in d.breached()] == ["watch api"]
    page = diff_html(d)
    assert "<h2>Checks that differ</h2>" in page and "SLA breached: 5xx 100%" in page


# --- real records, through the command -------------------------------------------------------


def audit_diff(outputs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploybook", "audit", "diff", *args, "--outputs", str(outputs)],
        capture_output=True,
        text=True,
    )


def test_staging_vs_production_02_shows_only_what_truly_differs(sandbox, tmp_path: Path) -> None:
    from deploybook.ops.runner import run_runbook
    from deploybook.session import recorddiff

    for env in ("sandbox", "sandbox-production"):
        result = run_runbook(
            "02-migration-dry-run", env, "v1.4.0", {"previous_release": "v1.3.0"}, html=False
        )
        assert result.status == "passed", result.error
    outputs = sandbox["outputs"]
    proc = audit_diff(
        outputs, "sandbox", "sandbox-production", "--runbook", "02", "--release", "v1.4.0",
        "--html", str(tmp_path / "diff.html"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("A: sandbox/v1.4.0/")
    assert "\nB: sandbox-production/v1.4.0/" in proc.stdout
    changes = recorddiff.diff(
        "sandbox", "sandbox-production", release="v1.4.0", runbook="02-migration-dry-run",
        outputs=outputs,
    )  # fmt: skip
    # Both environments hold the same data and the same migrations: no check changes status,
    # none is on one side only, and env names, timestamps, digests, scratch database names,
    # paths and dump sizes are not differences. Only measured lock timings may differ.
    assert [c for c in changes.checks if c.kind != "evidence"] == []
    assert {c.name for c in changes.checks} <= {"migration impact", "deployment window fit"}
    assert changes.facts == [] or {f.key.split(".")[0] for f in changes.facts} <= {
        "migration_impact"
    }
    assert changes.same_checks >= 20
    page = (tmp_path / "diff.html").read_text()
    assert "<h1>deploybook audit diff</h1>" in page and "sandbox-production/v1.4.0/" in page


def test_passing_vs_failing_04_shows_the_breached_checks(sandbox) -> None:
    from deploybook.ops.runner import run_runbook
    from deploybook.sandbox import stack

    version = stack.admin("/admin/state", method="GET")["envs"]["sandbox"]["api"]["version"]
    parameters = {"operator": "ci", "watch_window_s": 6, "expect_version": version}
    passing = run_runbook("04-smoke", "sandbox", "v1.4.0", parameters, html=False)
    assert passing.status == "passed", passing.error
    stack.admin("/admin/sandbox/api/fault", {"error_rate": 1.0, "status": 503})
    try:
        failing = run_runbook("04-smoke", "sandbox", "v1.4.0", parameters, html=False)
    finally:
        stack.admin("/admin/sandbox/api/fault", method="DELETE")
    assert failing.status == "failed"

    proc = audit_diff(
        sandbox["outputs"], "previous", "latest", "--env", "sandbox", "--runbook", "04",
        "--release", "v1.4.0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("  ")[0].strip(): line for line in proc.stdout.splitlines()}
    assert "status     pass   fail" in rows["SLA api"]
    assert "status     pass   fail" in rows["api health"]
    assert "SLA breached: 5xx rate on api" in proc.stdout
    assert "fact       breach                                   — → recorded" in proc.stdout
    assert "SLA web" not in rows or "status" not in rows["SLA web"]


def test_the_overview_links_a_rerun_to_its_diff_with_the_run_before(tmp_path: Path) -> None:
    import nbformat

    from deploybook.core import audit
    from deploybook.session.overview import build_report

    outputs = tmp_path / "outputs"
    for status, evidence in (("pass", "SLA held"), ("fail", "SLA breached: 5xx rate 100%")):
        nb = nbformat.v4.new_notebook()
        payload = {
            "name": "checks",
            "data": [{"name": "SLA api", "status": status, "evidence": evidence}],
            "encoder": "json",
            "version": 1,
        }
        cell = nbformat.v4.new_code_cell("# glued")
        cell.outputs.append(
            nbformat.v4.new_output(
                "display_data",
                data={"application/scrapbook.scrap.json+json": payload},
                metadata={"scrapbook": {"name": "checks", "data": True, "display": False}},
            )
        )
        nb.cells.append(cell)
        record = audit.record_path(outputs, "staging", "v1.4.0", "04-smoke")
        record.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, record)
        audit.append_ledger(
            outputs,
            "staging",
            record=str(record.relative_to(outputs)),
            runbook="04-smoke",
            release="v1.4.0",
            status="passed" if status == "pass" else "failed",
        )
    page = build_report("staging", "v1.4.0", outputs).read_text()
    diffs = sorted((outputs / "staging" / "v1.4.0").glob("*.diff.html"))
    assert len(diffs) == 1 and diffs[0].name == record.with_suffix(".diff.html").name
    assert f'<a href="{diffs[0].name}">diff with the run before</a>' in page
    assert "SLA breached: 5xx rate 100%" in diffs[0].read_text()
