"""Configured commands run in the checkout (issue 16, item 1).

Unit tests on real processes (`systems.workdir`), then 03 and 05 on a stack of this module's
own: the fixture checkout's `./ops/release.sh` — a path only the checkout resolves — deploys
and reverts; a checkout without it ends in a named failed step with nothing changed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandbox_fixtures import CANARIES

from deploybook.config import read_params_yaml
from deploybook.core.secrets import register
from deploybook.errors import CommandFailed, ConfigError, GateFailed
from deploybook.runbooks.rollback import plan as rollback_plan
from deploybook.runbooks.rollback import steps as rollback_steps
from deploybook.runbooks.rollout import cells as rollout
from deploybook.sandbox import stack
from deploybook.session import runbook as session
from deploybook.session.approvals import Confirmation
from deploybook.systems.postgres import db
from deploybook.systems.postgres.snapshot import snapshot
from deploybook.systems.workdir import checkout_dir, preflight, run_in_checkout

ROOT = Path(__file__).resolve().parent.parent
RELEASE, PREVIOUS = stack.RELEASE, stack.PREVIOUS
SCRIPT = "./ops/release.sh"
LOGGING_SCRIPT = """#!/bin/sh
# The fixture's release script, wrapped: says where it ran and with what.
echo "$(pwd) $*" >> deploys.log
exec ./ops/release.real.sh "$@"
"""


def _script(folder: Path, body: str, mode: int = 0o755) -> Path:
    path = folder / "ops" / "release.sh"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(mode)
    return path


# --- one place decides: unit tests on real processes ---------------------------------------


def test_relative_command_runs_in_the_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "americano"
    _script(checkout, '#!/bin/sh\necho "ran in $(pwd) with $*"\n')
    assert not (Path.cwd() / "ops" / "release.sh").exists()  # only the checkout resolves it
    result = run_in_checkout(
        "deploy api",
        [SCRIPT, "deploy", "--version", "{version}"],
        {"version": RELEASE},
        checkout=checkout,
        timeout_s=10,
    )
    assert result.ok
    assert result.stdout.strip() == f"ran in {checkout.resolve()} with deploy --version {RELEASE}"


def test_a_build_runs_in_its_folder_of_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "apps" / "api").mkdir(parents=True)
    result = run_in_checkout(
        "api tests", ["pwd"], None, checkout=tmp_path, subdir="apps/api", timeout_s=10
    )
    assert result.stdout.strip() == str(tmp_path / "apps" / "api")
    with pytest.raises(ConfigError, match="leaves the checkout"):
        run_in_checkout("api tests", ["pwd"], None, checkout=tmp_path, subdir="..", timeout_s=5)


def test_the_checkouts_script_can_call_this_installation(tmp_path: Path) -> None:
    """`deploybook` is first on the command's PATH even when the caller's PATH lacks it."""
    _script(tmp_path, "#!/bin/sh\nexec deploybook --help\n")
    saved = os.environ["PATH"]
    os.environ["PATH"] = "/usr/bin:/bin"
    try:
        result = run_in_checkout("flag x", [SCRIPT], None, checkout=tmp_path, timeout_s=30)
    finally:
        os.environ["PATH"] = saved
    assert "usage: deploybook" in result.stdout


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no checkout", ["deploy api", "does not exist", "checkout.path", "Fix:"]),
        ("no script", ["deploy api", "./ops/release.sh is not in the checkout", "Fix: commit"]),
        ("not executable", ["deploy api", "is not executable", "chmod +x ./ops/release.sh"]),
        ("not on PATH", ["deploy api", "'no-such-release-tool' is not on PATH", "Fix: install"]),
    ],
)
def test_a_command_that_cannot_start_is_named_with_the_fix(
    tmp_path: Path, case: str, expected: list[str]
) -> None:
    checkout, marker = tmp_path / "americano", tmp_path / "ran"
    argv = [SCRIPT, "deploy"]
    if case != "no checkout":
        checkout.mkdir()
    if case == "not executable":
        _script(checkout, f"#!/bin/sh\ntouch {marker}\n", mode=0o644)
    if case == "not on PATH":
        argv = ["no-such-release-tool", "deploy"]
    with pytest.raises(CommandFailed) as caught:
        run_in_checkout("deploy api", argv, None, checkout=checkout, timeout_s=5)
    message = str(caught.value)
    for part in expected:
        assert part in message, (part, message)
    assert str(checkout.resolve()) in message
    assert not marker.exists()
    assert preflight([("deploy api", argv, None, ".")], checkout) == [message]


def test_preflight_names_every_command_once_and_never_a_secret(tmp_path: Path) -> None:
    secret = "sk-workdir-canary-41f0c2"
    register(secret)
    checkout = tmp_path / f"americano-{secret}"
    commands = [
        (f"deploy {svc}", [SCRIPT, "deploy", "--service", svc], None, ".") for svc in ("api", "web")
    ]
    problems = preflight(commands, checkout)
    assert len(problems) == 1  # the checkout is missing: one message for all
    assert "deploy api, deploy web" in problems[0] and secret not in problems[0]
    assert "***" in problems[0]
    checkout.mkdir()
    problems = preflight(commands, checkout)  # one program missing: one message, both named
    assert len(problems) == 1 and problems[0].startswith("deploy api, deploy web: ./ops/")
    assert secret not in problems[0]
    _script(checkout, "#!/bin/sh\n")
    assert preflight(commands, checkout) == []
    assert checkout_dir(checkout, what="x") == checkout.resolve()


# --- 03 and 05 on a stack of this module's own ----------------------------------------------

ENV = "workdir"


@pytest.fixture(scope="module")
def workdir_stack() -> Iterator[dict[str, Any]]:
    """A stack with one scratch environment; NOTE: not under pytest's basetemp."""
    base = Path(tempfile.mkdtemp(prefix="deploybook-workdir-"))
    saved = os.environ.copy()
    os.environ["DEPLOYBOOK_STATE_DIR"] = str(base / "state")
    os.environ["DEPLOYBOOK_OUTPUTS"] = str(base / "outputs")
    os.environ.update(CANARIES)
    try:
        state = stack.up(
            base / "state",
            password=CANARIES["DEPLOYBOOK_SANDBOX_DB_PASSWORD"],
            envs=(ENV,),
            progress=None,
        )
        yield {**state, "base": base}
    finally:
        stack.down(base / "state", progress=None)
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(base, ignore_errors=True)


def _checkout(rig: dict[str, Any], name: str) -> Path:
    """A copy of the stack's fixture checkout (the original stays as generated)."""
    copy = rig["base"] / name / "americano"
    shutil.copytree(rig["checkout"], copy, symlinks=True)
    return copy


def _params(rig: dict[str, Any], checkout: Path, name: str) -> Path:
    """params/sandbox.yaml as shipped (./ops/release.sh commands), for ENV and ``checkout``."""
    data = read_params_yaml(ROOT / "params" / "sandbox.yaml")
    data["environment"] = {**data["environment"], "name": ENV}
    data["checkout"] = {**data["checkout"], "path": str(checkout)}
    data["rollout"] = {"build": [], "flag_command": data["rollout"]["flag_command"]}
    path = rig["base"] / name / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _start(name: str, params: Path, execute: bool) -> session.Runbook:
    return session.start(
        name,
        env=ENV,
        release=RELEASE,
        previous_release=PREVIOUS,
        params_file=str(params),
        operator="ci",
        execute=execute,
        run_id="workdir",
    )


def _state() -> tuple[dict[str, str], list[tuple[str, bool]], int]:
    """What a rollout or rollback changes: versions, _prisma_migrations, messages sent."""
    services = stack.admin("/admin/state", method="GET")["envs"][ENV]
    url = stack.sandbox_environment(ENV)["DATABASE_URL"]
    rows = [(r["migration_name"], r["finished_at"] is not None) for r in db.prisma_rows(url) or []]
    sent = stack.admin("/admin/messages", method="GET")
    return {n: s["version"] for n, s in services.items()}, rows, sum(map(len, sent.values()))


def _logged(checkout: Path) -> list[str]:
    log = checkout / "deploys.log"
    return log.read_text().splitlines() if log.exists() else []


def test_checkout_without_the_script_fails_a_first_step_and_changes_nothing(workdir_stack):
    checkout = _checkout(workdir_stack, "lacking")
    (checkout / "ops" / "release.sh").unlink()
    params = _params(workdir_stack, checkout, "lacking")
    before = _state()

    dry = _start("03-rollout", params, False)
    rollout.rollout(dry, {})
    failed = [c for c in dry.checks if c.status == "fail"]
    assert [c.name for c in failed] == ["commands present in the checkout"]
    assert "A real run would stop here" in failed[0].evidence

    run = _start("03-rollout", params, True)
    result = rollout.rollout(run, {})
    assert result.status == "failed"
    assert [(s.name, s.status) for s in result.steps] == [
        ("commands present in the checkout", "failed")
    ]
    error = result.error or ""
    names = "deploy api, deploy chatmock, deploy ocr, deploy web"
    assert f"{names}: ./ops/release.sh is not in the checkout {checkout}" in error
    assert "Fix: commit it" in error and "Nothing was changed" in error
    assert _state() == before
    with pytest.raises(GateFailed, match="commands present in the checkout"):
        run.finish()


@pytest.fixture(scope="module")
def rolled_out(workdir_stack: dict[str, Any]) -> dict[str, Any]:
    """The staging rollout of RELEASE through the checkout's script (wrapped to log)."""
    checkout = _checkout(workdir_stack, "logging")
    script = checkout / "ops" / "release.sh"
    script.rename(checkout / "ops" / "release.real.sh")
    _script(checkout, LOGGING_SCRIPT)
    params = _params(workdir_stack, checkout, "logging")
    url = stack.sandbox_environment(ENV)["DATABASE_URL"]
    snap = snapshot(
        url, workdir_stack["base"] / "snapshots", "before", compress=0,
        bin_dir=workdir_stack["postgres"]["bin_dir"],
    )  # fmt: skip
    run = _start("03-rollout", params, True)
    result = rollout.rollout(run, {})
    assert result.status == "completed", result.error
    return {"checkout": checkout, "params": params, "snapshot": snap, "run": run}


def test_deploy_runs_the_checkouts_script_in_the_checkout(rolled_out) -> None:
    checkout = rolled_out["checkout"]
    assert _state()[0] == dict.fromkeys(("api", "web", "chatmock", "ocr"), RELEASE)
    lines = _logged(checkout)
    assert f"{checkout} deploy --env {ENV} --service api --version {RELEASE}" in lines
    assert f"{checkout} deploy --env {ENV} --service web --version {RELEASE}" in lines
    assert all(line.startswith(f"{checkout} deploy ") for line in lines), lines
    assert rolled_out["run"].finish().ok


def _rollback(params: Path, snap: Any, execute: bool = True) -> tuple[Any, Any]:
    run = _start("05-rollback", params, execute)
    given = {"snapshot": str(snap.path), "previous_release": PREVIOUS}
    plan = rollback_plan.prefill(run, given)
    confirmation = Confirmation("type the database", plan.database, plan.database)
    return run, (plan, confirmation)


def test_rollback_without_the_script_refuses_and_changes_nothing(workdir_stack, rolled_out):
    checkout = _checkout(workdir_stack, "lacking-05")
    (checkout / "ops" / "release.sh").unlink()
    params = _params(workdir_stack, checkout, "lacking-05")
    before = _state()
    run, (plan, confirmation) = _rollback(params, rolled_out["snapshot"])
    with pytest.raises(CommandFailed) as caught:
        rollback_steps.revert_and_restore(run, plan, confirmation)
    message = str(caught.value)
    names = "revert web, revert api, revert chatmock, revert ocr"
    assert f"{names}: ./ops/release.sh is not in the checkout {checkout}" in message
    assert "Nothing was changed" in message
    names = {c.name: c.status for c in run.checks}
    assert names["revert commands present in the checkout"] == "fail"
    assert _state() == before  # no announcement, no revert, no restore


def test_rollback_reverts_through_the_checkouts_script(rolled_out) -> None:
    checkout = rolled_out["checkout"]
    logged = len(_logged(checkout))
    run, (plan, confirmation) = _rollback(rolled_out["params"], rolled_out["snapshot"])
    recovery = rollback_steps.revert_and_restore(run, plan, confirmation)
    assert recovery.checks.ok, [c.evidence for c in recovery.checks if c.status == "fail"]
    assert _state()[0] == dict.fromkeys(("api", "web", "chatmock", "ocr"), PREVIOUS)
    reverts = _logged(checkout)[logged:]
    assert f"{checkout} deploy --env {ENV} --service web --version {PREVIOUS}" == reverts[0]
    assert len(reverts) == 4 and all(r.startswith(f"{checkout} deploy ") for r in reverts)
