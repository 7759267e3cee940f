"""The lead's view: runbook 01 run cell by cell in JupyterLab, driven in a real browser.

JupyterLab listens on 127.0.0.1 with a random token and the sandbox's environment;
Playwright drives Debian's chromium (installed with apt when missing; Playwright's own
browser download is not reachable from CI). Autosave is off, so the committed runbook and
its reference outputs are never rewritten by the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from debian import debian_binary
from http_stub import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = "runbooks/01-preconditions.ipynb"
CHROMIUM = "/usr/bin/chromium"
BUDGET_S = 90
# Lab settings for the test: no autosave (the runbook is committed), every cell in the DOM
# (no virtual scrolling), no news or update pop-ups.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"checkForUpdates": False, "fetchNews": "false"},
}


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt when missing (fails instead of skipping where
    CI sets DEPLOYBOOK_REQUIRE_BROWSER=1)."""
    required = os.environ.get("DEPLOYBOOK_REQUIRE_BROWSER") == "1" or bool(os.environ.get("CI"))
    return debian_binary("chromium", CHROMIUM, required=required)


def _stop(proc: subprocess.Popen, url: str, token: str) -> None:
    """Ask the server to shut down (it stops its kernels), then make sure it has gone."""
    if proc.poll() is None:
        try:
            httpx.post(
                f"{url}/api/shutdown", headers={"Authorization": f"token {token}"}, timeout=5
            )
            proc.wait(timeout=15)
        except (httpx.HTTPError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def jupyterlab(sandbox, tmp_path: Path) -> Iterator[dict]:
    """JupyterLab on 127.0.0.1:<free port> with a random token, rooted at the checkout."""
    yield from _lab(tmp_path, ROOT, keep_root=False)


@pytest.fixture
def lead_lab(own_sandbox, tmp_path: Path) -> Iterator[dict]:
    """JupyterLab as `deploybook open` starts it (app exposed, so a gate cell can save its
    copy before sealing), rooted at / since the test's outputs sit outside the checkout."""
    yield from _lab(
        tmp_path, Path("/"), keep_root=True, extra=["--LabApp.expose_app_in_browser=True"]
    )


def _lab(tmp_path: Path, root: Path, *, keep_root: bool, extra: list[str] = ()) -> Iterator[dict]:
    home = tmp_path / "jupyter"
    for plugin, values in LAB_SETTINGS.items():
        target = home / "settings" / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    env = os.environ.copy()  # the `sandbox` fixture's state dir, outputs and canaries
    for name in ("DEPLOYBOOK_HEADLESS", "DEPLOYBOOK_RECORD", "DEPLOYBOOK_ROOT"):
        env.pop(name, None)  # a person at the keyboard: widgets, root found from runbooks/
    if keep_root:  # a copy outside the checkout finds its project as `deploybook open` says
        env["DEPLOYBOOK_ROOT"] = str(ROOT)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    port, token = free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        # Checkpoints (written when a notebook is opened) stay out of the checkout.
        f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}",
    ]
    command += list(extra)
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/api/status?token={token}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield {"url": url, "token": token, "log": log}
    finally:
        _stop(proc, url, token)


def _menu(page, menu: str, item: str) -> None:
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()


def test_runbook_01_runs_in_jupyterlab(chromium, jupyterlab, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    runbook = ROOT / RUNBOOK
    before = hashlib.sha256(runbook.read_bytes()).hexdigest()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        try:
            page.goto(f"{jupyterlab['url']}/lab/tree/{RUNBOOK}?token={jupyterlab['token']}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
            # Commands act once the kernel session is connected.
            expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=60_000)
            # The committed references are on screen: clear them so what follows is this run.
            _menu(page, "Edit", "Clear Outputs of All Cells")
            expect(notebook.locator(".jp-OutputArea-output")).to_have_count(0)
            _menu(page, "Run", "Run All Cells")

            gate = notebook.locator(".jp-CodeCell").last
            expect(gate.locator(".deploybook-checks")).to_be_visible(timeout=75_000)
            expect(gate.locator(".jp-OutputArea-output")).not_to_contain_text("GateFailed")
            gate.scroll_into_view_if_needed()
            page.screenshot(path=shots / "01-preconditions-gate.png")

            header = notebook.locator(".deploybook-header")
            header.scroll_into_view_if_needed()
            expect(header).to_contain_text("You are here: 01-preconditions on sandbox for v1.4.0")
            expect(header).to_contain_text("DRY RUN")
            first_table = notebook.locator(".deploybook-checks").first
            expect(first_table).to_be_visible()
            expect(first_table).to_contain_text("nothing out of scope ships")
            page.screenshot(path=shots / "01-preconditions-top.png")

            signoff = notebook.locator(".jupyter-widgets", has_text="Sign-offs (plan section 18)")
            signoff.first.scroll_into_view_if_needed()
            expect(signoff.first).to_be_visible()
            expect(notebook.locator(".widget-checkbox")).to_have_count(5)  # one per role

            # The lead signs off in the form and re-runs the next cell: it is recorded.
            form = signoff.first
            form.locator(".widget-text input").first.fill("Ann Lee")
            form.locator(".widget-checkbox input").first.check()
            form.locator("button", has_text="Record sign-offs").click()
            expect(form).to_contain_text("PM: Ann Lee")
            check = notebook.locator(".jp-CodeCell", has_text="check_signoffs(")
            check.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            expect(check.locator(".jp-OutputArea-output")).to_contain_text(
                "approved by Ann Lee", timeout=20_000
            )
            check.scroll_into_view_if_needed()
            page.screenshot(path=shots / "01-preconditions-signoffs.png")
        except Exception:
            page.screenshot(path=shots / "failure.png")
            log = jupyterlab["log"].read_text(errors="replace")[-3000:]
            print(f"screenshots in {shots}\njupyter lab log (tail):\n{log}")
            raise
        finally:
            browser.close()

    print(f"screenshots in {shots}")
    if target := os.environ.get("DEPLOYBOOK_SCREENSHOTS"):  # CI uploads this folder
        shutil.copytree(shots, target, dirs_exist_ok=True)
    assert (shots / "01-preconditions-gate.png").stat().st_size > 10_000
    assert hashlib.sha256(runbook.read_bytes()).hexdigest() == before, "the runbook was saved"
    assert time.monotonic() - started < BUDGET_S


def _idle(page) -> None:
    """The kernel is idle and stays so (Run All flickers idle between cells)."""
    from playwright.sync_api import expect

    status = page.locator("#jp-main-statusbar")
    for _ in range(3):
        expect(status).to_contain_text("| Idle", timeout=120_000)
        page.wait_for_timeout(1500)
    expect(status).to_contain_text("| Idle", timeout=120_000)


def _run_from(page, notebook, has_text: str) -> None:
    """Select the code cell holding ``has_text`` and run it and every cell below."""
    cell = notebook.locator(".jp-CodeCell", has_text=has_text)
    cell.locator(".jp-InputArea-prompt").click()
    _menu(page, "Run", "Run Selected Cell and All Below")


def test_lead_walks_03_on_a_prepared_copy(chromium, lead_lab, own_sandbox, tmp_path: Path) -> None:
    """Issue 21's walkthrough: `deploybook open`, Run All stops at the first change until
    the lead confirms, sign-offs recorded, the rollout completes, the gate seals the record
    (HTML and ledger line); the committed runbook is unchanged on disk."""
    from playwright.sync_api import expect, sync_playwright

    template = ROOT / "runbooks" / "03-rollout.ipynb"
    before = hashlib.sha256(template.read_bytes()).hexdigest()
    opened = subprocess.run(
        [
            str(Path(sys.executable).parent / "deploybook"),
            "open",
            "03-rollout",
            "--env",
            "sandbox",
            "--release",
            "v1.4.0",
            "-p",
            "execute",
            "true",
            "-p",
            "operator",
            "Lee Lead",
            "--no-lab",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert opened.returncode == 0, opened.stderr
    copy = Path(re.search(r"copy:\s+(\S+)", opened.stdout).group(1))
    outputs = own_sandbox["outputs"]
    assert copy.is_file() and copy.is_relative_to(outputs)
    ledger = outputs / "sandbox" / "ledger.jsonl"
    assert json.loads(ledger.read_text().splitlines()[-1])["status"] == "open"

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        try:
            page.goto(f"{lead_lab['url']}/lab/tree{copy}?token={lead_lab['token']}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
            expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=60_000)
            _menu(page, "Run", "Run All Cells")
            execute = notebook.locator(".jp-CodeCell", has_text="book.rollout.execute(")
            expect(execute).to_contain_text("waiting for you at step 1", timeout=120_000)
            _idle(page)
            gate = notebook.locator(".jp-CodeCell").last
            expect(gate.locator(".jp-OutputArea-output")).to_have_count(0)  # stopped before
            execute.locator(".deploybook-confirm").scroll_into_view_if_needed()
            expect(execute.locator(".deploybook-refusal")).to_contain_text("What to do")
            expect(execute.locator("button", has_text="Confirm step 1")).to_be_visible()
            page.screenshot(path=shots / "03-waiting.png")

            form = notebook.locator(
                ".jupyter-widgets", has_text="Sign-offs (plan section 18)"
            ).first
            for i, (name, box) in enumerate(
                zip(
                    ["Pat PM", "Wendy Web", "Andy API", "Sam Services", "Quinn QA"],
                    form.locator(".widget-checkbox input").all(),
                    strict=False,
                )
            ):
                form.locator(".widget-text input").nth(i).fill(name)
                box.check()
            form.locator("button", has_text="Record sign-offs").click()
            expect(form).to_contain_text("PM: Pat PM")

            first = True
            for _ in range(30):
                if "sealed:" in (gate.inner_text() or ""):
                    break
                button = execute.locator("button:not([disabled])", has_text="Confirm step")
                expect(button.first).to_be_visible(timeout=30_000)
                button.first.click()
                expect(execute).to_contain_text("confirmed at")
                _run_from(
                    page,
                    notebook,
                    "book.rollout.check_gates(" if first else "book.rollout.execute(",
                )
                first = False
                _idle(page)
            expect(gate).to_contain_text("sealed:", timeout=60_000)
            gate.scroll_into_view_if_needed()
            page.screenshot(path=shots / "03-sealed.png")
        except Exception:
            page.screenshot(path=shots / "failure.png")
            log = lead_lab["log"].read_text(errors="replace")[-3000:]
            print(f"screenshots in {shots}\njupyter lab log (tail):\n{log}")
            raise
        finally:
            browser.close()

    entry = json.loads(ledger.read_text().splitlines()[-1])
    assert entry["status"] == "passed", entry
    assert entry["mode"] == "interactive" and entry["copy"] == str(copy.relative_to(outputs))
    record = outputs / entry["record"]
    assert record.is_file() and (outputs / entry["html"]).is_file()
    text = record.read_text()
    assert "approved by Pat PM" in text and "confirmed by Lee Lead" in text
    # Steps done in this walkthrough read as done (with durations), not as resumed skips.
    assert "resumed: not repeated" not in text
    assert "step: " in text and "waiting for you" not in json.dumps(
        json.loads(text)["metadata"]["deploybook"]
    )
    # Later runbooks read it like a headless record: 04's expectation, 05's prefill, the
    # production gate all find it through the ledger.
    from deploybook.session import records, scraps

    found = records.find(
        "sandbox", "v1.4.0", "03-rollout", passed=True, having=scraps.RolloutOutcome
    )
    assert found is not None and found.path == record
    assert found.read(scraps.RolloutOutcome).status == "completed"
    assert found.holds(scraps.PreviousVersions)
    verified = subprocess.run(
        [str(Path(sys.executable).parent / "deploybook"), "audit", "verify"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OPEN" not in verified.stdout
    assert hashlib.sha256(template.read_bytes()).hexdigest() == before, "the template was saved"
