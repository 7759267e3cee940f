"""Reliability scenarios of issue 22: leak-proof and crash-safe, tried as an attacker would.

A sandbox of its own (sandbox and sandbox-production) with distinctive canaries, one of
them holding a quote and a backslash. One scenario per finding: a mis-encoded
DATABASE_URL, a key straddling the response-body cut, a build printing secrets
JSON-escaped, shell-quoted and URL-encoded plus the other environment's keys, kill -9 of
the kernel mid-build (no orphan, crashed entry, verify OK, the rerun resumes), `v1.4.0\\n`
and an Arabic-Indic digit (exit 2, nothing written), a YAML alias bomb (exit 2, refused
under a memory and CPU limit that its expansion would break), and a 41-character
environment name with keep_scratch. Each adds a row to the reliability summary; the last
scans every output for every canary (and every piece a broken URL splits it into).
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from http_stub import StubServer
from reliability_helpers import (
    canary_hits,
    data_lost,
    environ,
    failed_checks,
    isolated_test,
    outcome,
    sandbox_rig,
    tree,
)
from reliability_plugin import scenario, start_clock

from deploybook.config import read_params_yaml
from deploybook.core import audit, procs
from deploybook.ops.runner import RunResult, run_runbook
from deploybook.sandbox import stack
from deploybook.sandbox.postgres import PgCluster
from deploybook.session.records import read_scraps
from deploybook.systems.http import SmokeSpec, run_smoke
from deploybook.systems.postgres import db
from deploybook.systems.postgres.restore import drop_scratch

pytestmark = pytest.mark.reliability

ROOT = Path(__file__).resolve().parent.parent
RELEASE, PREVIOUS = stack.RELEASE, stack.PREVIOUS
ENV = "sandbox"
DEPLOYBOOK = str(Path(sys.executable).parent / "deploybook")
LONG_ENV = "a-very-long-environment-name-for-staging1"  # 41 characters, the most allowed
CANARIES = {
    "DEPLOYBOOK_SANDBOX_DB_PASSWORD": "pwcnry22-d41b7e90",
    # A quote and a backslash: a tool printing JSON writes it escaped.
    "SANDBOX_OPENAI_API_KEY": 'sk-cnry22-js"on\\esc-4e1a9b',
    "SANDBOX_GEMINI_API_KEY": "cnry22-gemini-0b5c9d3e",
    "SANDBOX_GOOGLE_GEMINI_API_KEY": "cnry22-google-6f2a8c1d",
    # The other environment's keys, present in the same process.
    "SANDBOX_PRODUCTION_OPENAI_API_KEY": "sk-cnry22-prod-openai-7a1c5e",
    "SANDBOX_PRODUCTION_GEMINI_API_KEY": "cnry22-prod-gemini-52e0aa",
    "SANDBOX_PRODUCTION_GOOGLE_GEMINI_API_KEY": "cnry22-prod-google-93d1bb",
}
# Passwords pasted into DATABASE_URL without percent-encoding.
MIS_ENCODED = {
    "slash": "cnry22b64k/Xy+Zq9w=",
    "space": "cnry22sp1 Tail8wq",
    "raw @": "cnry22at@Tail9zz",
}
STRADDLING_KEY = "sk-cnry22-straddle-0123456789abcdef"


def needles() -> list[str]:
    """Every canary, and each piece of it a broken URL or an escape could leave whole."""
    values = [*CANARIES.values(), *MIS_ENCODED.values(), STRADDLING_KEY]
    pieces = {p for v in values for p in re.split(r"[^A-Za-z0-9+=-]", v) if len(p) >= 6}
    return sorted(set(values) | pieces)


@dataclass
class Rig:
    base: Path
    state: dict[str, Any]
    outputs: Path
    texts: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    start_clock()
    with sandbox_rig("deploybook-reliability22-", CANARIES, (ENV, "sandbox-production")) as (
        base,
        state,
    ):
        yield Rig(base, state, base / "outputs")


@pytest.fixture(autouse=True)
def _isolated(rig: Rig, request: pytest.FixtureRequest, capfd: pytest.CaptureFixture) -> Iterator:
    with isolated_test(rig.texts, request.node.name, capfd):
        yield


@pytest.fixture
def row(request: pytest.FixtureRequest) -> Callable[[str, str], Any]:
    return lambda name, expected: scenario(request.node.nodeid, name, expected)


def rows(env: str = ENV) -> dict[str, int]:
    return db.row_counts(stack.sandbox_environment(env)["DATABASE_URL"])


def staging_kind(rig: Rig, name: str, **database: Any) -> Path:
    """The sandbox's params as a staging-kind environment: its values come from the
    process environment (as a real staging's do), not from the stack."""
    data = read_params_yaml(ROOT / "params" / f"{ENV}.yaml")
    data["environment"] = {**data["environment"], "name": name, "kind": "staging"}
    data["database"] = {**data.get("database", {}), **database}
    path = rig.base / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def scan(rig: Rig, *roots: Path) -> list[tuple[str, str]]:
    found = []
    for root in roots or (rig.outputs,):
        for path in root.rglob("*") if root.is_dir() else [root]:
            if path.is_file():
                data = path.read_bytes()
                found += [(str(path), n) for n in needles() if n.encode() in data]
    return found


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(MIS_ENCODED))
def test_mis_encoded_database_url_is_never_echoed(rig: Rig, row, case: str) -> None:
    r = row(
        f"secret: DATABASE_URL with an unencoded password ({case})",
        "01 fails 'database reachable' by position only; 0 canary bytes",
    )
    password = MIS_ENCODED[case]
    port = rig.state["postgres"]["port"]
    url = f"postgresql://postgres:{password}@127.0.0.1:{port}/{stack.database_name(ENV)}"
    env = f"rel-url-{case.replace(' @', 'at').replace(' ', '')}"
    params = staging_kind(rig, env, pg_bin_dir=str(PgCluster.bin_dir()))
    before = rows()
    with environ(**{**stack.sandbox_environment(ENV), "DATABASE_URL": url}):
        result = run_runbook(
            "01-preconditions",
            env,
            RELEASE,
            {"previous_release": PREVIOUS, "rate_limits_reviewed_by": "Sam Services"},
            params_file=params,
        )
    checks = {c["name"]: c for c in read_scraps(result.record).get("checks") or []}
    reach = checks["database reachable"]
    r.observed = f"{outcome(result, 60)}; database reachable: {reach['evidence'][:90]}"
    r.data_lost = data_lost(before, rows())
    rig.texts[f"01 result {case}"] = json.dumps(result.entry) + (result.error or "")
    assert result.status == "failed"
    assert reach["status"] == "fail" and "database reachable" in failed_checks(result)
    assert reach["evidence"].startswith(
        "DATABASE_URL is not a valid URL (check that the password is percent-encoded)"
    )
    assert checks["secret DATABASE_URL configured"]["status"] == "fail"
    assert scan(rig, rig.outputs / env) == []


def test_key_straddling_the_body_cut_is_masked(rig: Rig, row) -> None:
    r = row(
        "secret: an API key straddling the 300-character response cut",
        "masked before the cut: 0 characters of the key in the evidence",
    )
    from deploybook.core.secrets import register

    register(STRADDLING_KEY)
    body = "x" * 282 + STRADDLING_KEY + "y" * 40  # the cut falls inside the key
    with StubServer() as stub:
        stub.route("GET", "/api/content/search", status=500, body=body)
        spec = SmokeSpec(name="search", url=stub.url("/api/content/search"), backoff_s=0.01)
        checks = run_smoke([spec])
    out = rig.outputs / "straddle"
    out.mkdir(parents=True, exist_ok=True)
    (out / "checks.txt").write_text(checks.to_text())
    (out / "checks.html").write_text(checks._repr_html_())
    (out / "checks.json").write_text(json.dumps(checks.to_records()))
    evidence = next(iter(checks)).evidence
    r.observed = f"evidence ends {evidence.splitlines()[-1][-60:]!r}"
    r.data_lost = "none"
    assert "***" in evidence and "straddle" not in evidence
    assert scan(rig, out) == []


# --- kill -9 of the kernel mid-build, then the rerun with a chatty build ----------------------

# No braces in the code: argv elements are templates and braces are placeholders.
SLOW_ONCE = (
    "import os, sys, pathlib, time; m = pathlib.Path(sys.argv[1]); "
    "m.exists() or (m.write_text(str(os.getpid()) + ' ' + str(os.getpgrp())), time.sleep(120))"
)
CHATTY = (
    "import json, os, shlex, sys, urllib.parse; k = os.environ.get('OPENAI_API_KEY', ''); "
    "[print(json.dumps(k), shlex.quote(k), urllib.parse.quote(k, safe=''), file=f) "
    "for f in (sys.stdout, sys.stderr)]; "
    "[print(n + '=' + v) for n, v in sorted(os.environ.items()) "
    "if n.startswith('SANDBOX_PRODUCTION_')]"
)


@pytest.fixture(scope="module")
def crashed(rig: Rig) -> dict[str, Any]:
    marker = rig.base / "build.pid"
    data = read_params_yaml(ROOT / "params" / f"{ENV}.yaml")
    slow = ["python", "-c", SLOW_ONCE, str(marker)]
    chatty = ["python", "-c", CHATTY]
    data["rollout"]["build"] = [
        *data["rollout"]["build"],
        {"name": "build web (slow; its kernel is killed)", "argv": slow},
        {"name": "build api (a tool printing secrets in every encoding)", "argv": chatty},
    ]
    params = rig.base / "sandbox-crash.yaml"
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    before = rows()
    seen: dict[str, int] = {}

    def kill_the_kernel() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (marker.exists() and marker.read_text()):
            time.sleep(0.05)
        build, group = map(int, marker.read_text().split())
        seen.update(build=build, group=group)
        os.kill(group, signal.SIGKILL)  # the kernel leads its process group

    killer = threading.Thread(target=kill_the_kernel)
    killer.start()
    parameters = {"execute": True, "previous_release": PREVIOUS, "operator": "rel-lead"}
    first = run_runbook("03-rollout", ENV, RELEASE, dict(parameters), params_file=params)
    killer.join(timeout=300)
    orphan = procs.pid_alive(seen.get("build"))
    group_left = procs.group_members(seen.get("group"))
    verified = audit.verify(rig.outputs, [ENV])
    second = run_runbook("03-rollout", ENV, RELEASE, dict(parameters), params_file=params)
    return {
        "before": before,
        "first": first,
        "orphan": orphan,
        "group_left": group_left,
        "verified": verified,
        "second": second,
        "after": rows(),
    }


def test_kill_9_of_the_kernel_mid_build(rig: Rig, row, crashed: dict[str, Any]) -> None:
    r = row(
        "fault: kill -9 of the kernel mid-build",
        "crashed entry + partial record/HTML, short message, no orphan, verify OK, rerun resumes",
    )
    first: RunResult = crashed["first"]
    second: RunResult = crashed["second"]
    count, problems = crashed["verified"]
    r.observed = (
        f"first {first.status}: {(first.error or '')[:70]}; orphan: "
        f"{'yes' if crashed['orphan'] else 'none'}; verify: {len(problems)} problem(s); "
        f"rerun {second.status}"
    )
    r.data_lost = data_lost(crashed["before"], crashed["after"])
    assert first.status == "crashed" and first.entry["status"] == "crashed"
    assert first.error.startswith("the kernel died while running cell")
    assert "Traceback" not in first.error and "DeadKernelError" not in first.error
    assert first.record.exists() and first.html and first.html.exists()
    assert not crashed["orphan"] and crashed["group_left"] == []
    assert problems == [] and count >= 1
    assert (ENV, str(first.record.relative_to(rig.outputs))) in audit.crashed(rig.outputs, [ENV])
    assert second.status == "passed", [
        (c["name"], c["evidence"][-800:])
        for c in read_scraps(second.record).get("checks") or []
        if c["status"] == "fail"
    ]
    steps = [c for c in read_scraps(second.record).get("checks") or [] if "step" in c["name"]]
    assert any("already done" in c["evidence"] or "skipped" in c["evidence"] for c in steps), [
        (c["name"], c["evidence"][:80]) for c in steps
    ]
    assert r.data_lost == "none"


def test_build_printing_secrets_in_every_encoding_leaks_nothing(
    rig: Rig, row, crashed: dict[str, Any]
) -> None:
    r = row(
        "secret: a build printing keys JSON-escaped, shell-quoted, URL-encoded + production's",
        "0 canary bytes in the record, HTML and ledger",
    )
    second: RunResult = crashed["second"]
    text = second.record.read_text()
    assert "build api (a tool printing secrets in every encoding)" in text
    assert "SANDBOX_PRODUCTION_OPENAI_API_KEY=***" in text  # the dump ran, and was masked
    hits = scan(rig, second.record, *filter(None, [second.html]), rig.outputs / ENV)
    r.observed = f"{len(hits)} canary occurrences in the rerun's record, HTML and ledger"
    r.data_lost = data_lost(crashed["before"], crashed["after"])
    assert hits == []


# --- input that never gets as far as a kernel --------------------------------------------------


@pytest.mark.parametrize("release", ["v1.4.0\n", "v1.4.1\u0660"], ids=["newline", "arabic-indic"])
def test_release_that_only_looks_like_semver(rig: Rig, row, release: str) -> None:
    r = row(f"hostile input: release {release!r}", "exit 2, one clear line, nothing written")
    before = tree(rig.outputs)
    proc = subprocess.run(
        [DEPLOYBOOK, "run", "01", "--env", ENV, "--release", release],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    rig.texts[f"release {release!r}"] = proc.stdout + proc.stderr
    r.observed = f"exit {proc.returncode}: {proc.stderr.strip()[:90]}"
    r.data_lost = "none" if tree(rig.outputs) == before else "files written"
    assert proc.returncode == 2
    assert (
        proc.stderr == f"deploybook: error: release {release!r} is not a SemVer tag like v1.4.0\n"
    )
    assert tree(rig.outputs) == before


def _limits() -> None:
    # Its expansion took 2.7 GB and 56 s: under these limits it could only crash, never exit 2.
    resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))
    resource.setrlimit(resource.RLIMIT_CPU, (30, 30))


def test_yaml_alias_bomb_is_refused_without_expansion(rig: Rig, row) -> None:
    r = row(
        "hostile input: a YAML alias bomb under an unknown key",
        "exit 2 naming the alias, within 1.5 GB and 30 s of CPU; nothing written",
    )
    levels = ["  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
        f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)
    ]
    bomb = rig.base / "bomb.yaml"
    bomb.write_text(
        f"extends: {ROOT / 'params' / 'sandbox.yaml'}\nnot_a_key:\n" + "\n".join(levels)
    )
    before = tree(rig.outputs)
    started = time.monotonic()
    proc = subprocess.run(
        [DEPLOYBOOK, "run", "01", "--env", ENV, "--release", RELEASE, "--params-file", str(bomb)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limits,
    )
    took = time.monotonic() - started
    rig.texts["alias bomb"] = proc.stdout + proc.stderr
    r.observed = f"exit {proc.returncode} after {took:.1f} s: {proc.stderr.strip()[:90]}"
    r.data_lost = "none" if tree(rig.outputs) == before else "files written"
    assert proc.returncode == 2, proc.stderr[-500:]
    assert "YAML aliases (*name) are not allowed" in proc.stderr and "bomb.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert tree(rig.outputs) == before


def test_long_environment_name_keeps_its_scratch(rig: Rig, row) -> None:
    r = row(
        "scratch: a 41-character environment name with keep_scratch",
        "verify and dry-run scratch names differ; the kept scratch really exists",
    )
    url = stack.sandbox_environment(ENV)["DATABASE_URL"]
    params = staging_kind(rig, LONG_ENV, pg_bin_dir=str(PgCluster.bin_dir()))
    before = rows()
    with environ(**stack.sandbox_environment(ENV)):
        result = run_runbook(
            "02-migration-dry-run",
            LONG_ENV,
            RELEASE,
            {"previous_release": PREVIOUS, "keep_scratch": True},
            params_file=params,
        )
    checks = {c["name"]: c for c in read_scraps(result.record).get("checks") or []}
    kept = checks.get("scratch database kept", {}).get("evidence", "")
    name = kept.split(" ", 1)[0]
    with db.connect(url, autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    r.observed = f"{outcome(result, 50)}; kept {name or '(none)'}: exists={name in existing}"
    r.data_lost = data_lost(before, rows())
    try:
        assert name.startswith("deploybook_scratch_a_very_long") and len(name) <= 63, kept
        assert name in existing, f"the record says {name} was kept, but it is not there"
    finally:
        if name in existing:
            drop_scratch(url, name, r"^deploybook_scratch_[a-z0-9_]+$")
    assert r.data_lost == "none"


# --- the scan ---------------------------------------------------------------------------------


def test_no_issue_22_canary_anywhere(rig: Rig, row) -> None:
    r = row(
        "secret canary: issue 22's canaries (mis-encoded URLs, escaped and other-env keys)",
        "0 occurrences in records, HTML, ledgers and captured output",
    )
    files = [p for p in rig.outputs.rglob("*") if p.is_file()]
    hits = [*scan(rig), *canary_hits(rig.texts, needles())]
    r.observed = f"{len(hits)} occurrences in {len(files)} output files, {len(rig.texts)} texts"
    r.data_lost = "none"
    assert hits == []
