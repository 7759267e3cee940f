"""deploy (argv templates, commands) and steps (resumable ledger, environment lock).

Real subprocesses throughout: hostile values never reach a process, a timeout kills the
whole process group, secrets never survive in output, a crashed run resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from deploybook.core.lock import environment_lock
from deploybook.core.secrets import register
from deploybook.core.steps import DONE, FAILED, PLANNED, SKIPPED, StepLedger
from deploybook.errors import CommandFailed, ConfigError, LockHeld
from deploybook.systems.commands import render_argv, run_command, run_template

PY = sys.executable
SRC = str(Path(__file__).resolve().parents[1] / "lib")


# --- render_argv ---------------------------------------------------------------------------

TEMPLATE = ["deploy-tool", "--env={env}", "set-image", "{service}", "registry/app:{version}"]
GOOD = {"env": "production", "service": "api", "version": "v1.4.0", "replicas": "3"}


def test_render_argv_fills_validated_values() -> None:
    argv = render_argv(TEMPLATE + ["--replicas", "{replicas}"], GOOD)
    assert argv == [
        "deploy-tool",
        "--env=production",
        "set-image",
        "api",
        "registry/app:v1.4.0",
        "--replicas",
        "3",
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("service", "; rm -rf /"),
        ("service", "$(id)"),
        ("service", "`id`"),
        ("env", "prod && reboot"),
        ("env", "../../etc"),
        ("version", "v1.2"),
        ("version", "1.2.3"),
        ("version", "v1.2.3; id"),
        ("version", "v01.2.3"),
        ("service", "API"),
        ("replicas", "101"),
        ("replicas", "-1"),
        ("replicas", "3; id"),
        ("snapshot", "../../etc/passwd"),
        ("snapshot", "--upload-pack=evil"),
        ("snapshot", "a b"),
        ("snapshot", "x\ny"),
    ],
)
def test_render_argv_refuses_hostile_values(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        render_argv(["tool", f"{{{key}}}"], {**GOOD, key: value})
    assert info.value.exit_code == 2
    assert key in str(info.value)


def test_render_argv_names_unknown_placeholder() -> None:
    with pytest.raises(ConfigError, match=r"\{flag\}"):
        render_argv(["tool", "{flag}"], GOOD)


@pytest.mark.parametrize("element", ["{version.__class__}", "{version!r}", "{0}", "{}", "{version"])
def test_render_argv_refuses_non_plain_fields(element: str) -> None:
    with pytest.raises(ConfigError):
        render_argv(["tool", element], GOOD)


def test_render_argv_refuses_a_shell_string() -> None:
    with pytest.raises(ConfigError, match="never a shell string"):
        render_argv("deploy-tool {service} {version}", GOOD)  # type: ignore[arg-type]


def test_unused_values_are_not_validated() -> None:
    assert render_argv(["tool", "{service}"], {"service": "web", "operator": "Dana Lee"}) == [
        "tool",
        "web",
    ]


def test_hostile_value_never_reaches_a_process(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ConfigError):
        run_template(["echo", "{service}"], {"service": f"; touch {marker}"}, timeout_s=5)
    assert not marker.exists()


# --- run_command ---------------------------------------------------------------------------


def test_run_command_captures_output_and_duration() -> None:
    result = run_command(
        [PY, "-c", "import sys; print('hello'); print('warn', file=sys.stderr)"], 10
    )
    assert result.ok and result.returncode == 0
    assert result.stdout.strip() == "hello"
    assert result.stderr.strip() == "warn"
    assert result.duration_s > 0
    assert "exit 0" in result.summary()


def test_run_command_scrubs_registered_secret() -> None:
    canary = "canary-run-Zq8Xw3vP"
    register(canary)
    result = run_command(
        [
            PY,
            "-c",
            "import os,sys; t=os.environ['TOKEN']; print(t); print(t, file=sys.stderr)",
        ],
        10,
        env={"TOKEN": canary},
    )
    assert canary not in result.stdout + result.stderr + str(result)
    assert "***" in result.stdout


def test_nonzero_exit_raises_with_scrubbed_stderr_excerpt() -> None:
    canary = "canary-fail-Kd02mq7R"
    register(canary)
    script = textwrap.dedent(
        f"""
        import sys
        for i in range(20):
            print(f"line {{i}} {canary}", file=sys.stderr)
        sys.exit(3)
        """
    )
    with pytest.raises(CommandFailed) as info:
        run_command([PY, "-c", script], 10)
    message = str(info.value)
    assert "exited 3" in message
    assert "line 0" in message and "line 19" in message
    assert "more lines" in message
    assert canary not in message
    assert info.value.result.returncode == 3  # type: ignore[attr-defined]


def test_nonzero_exit_without_check_returns_result() -> None:
    result = run_command([PY, "-c", "raise SystemExit(4)"], 10, check=False)
    assert result.returncode == 4 and not result.ok


def test_missing_executable_is_a_clear_error() -> None:
    with pytest.raises(CommandFailed, match="not found"):
        run_command(["deploybook-no-such-tool-xyz", "--version"], 5)


def _alive(pid: int) -> bool:
    """Running (not a zombie waiting for a reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # The command starts a grandchild that ignores SIGTERM and holds stdout open.
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(60)
        """
    )
    started = time.monotonic()
    with pytest.raises(CommandFailed, match="timed out after 1s") as info:
        run_command([PY, "-c", script], timeout_s=1)
    elapsed = time.monotonic() - started
    assert elapsed < 10
    assert info.value.result.timed_out  # type: ignore[attr-defined]
    assert "started" in info.value.result.stdout  # type: ignore[attr-defined]
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


# --- StepLedger ----------------------------------------------------------------------------


def test_plan_mode_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = StepLedger(tmp_path / "steps.jsonl", "run-1")
    calls: list[str] = []
    step = ledger.run(
        "deploy api", lambda: calls.append("x"), execute=False, describe="deploy-tool api v1.4.0"
    )
    assert step.status == PLANNED and calls == []
    assert "would run: deploy-tool api v1.4.0" in capsys.readouterr().out
    assert not (tmp_path / "steps.jsonl").exists()


def test_ledger_resumes_after_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "steps.jsonl"
    calls: list[str] = []
    broken = {"migrate": True}

    def migrate() -> dict[str, list[str]]:
        calls.append("migrate")
        if broken["migrate"]:
            raise CommandFailed("migration 20250101_add_index failed")
        return {"applied": ["20250101_add_index"]}

    def rollout(ledger: StepLedger) -> None:
        ledger.run(
            "announce",
            lambda: calls.append("announce") or "sent",
            execute=True,
            describe="announce",
        )
        ledger.run("migrate", migrate, execute=True, describe="apply migrations")
        ledger.run(
            "deploy api", lambda: calls.append("deploy api"), execute=True, describe="deploy"
        )

    first = StepLedger(path, "run-1")
    with pytest.raises(CommandFailed):
        rollout(first)
    assert [s["status"] for s in first.summary()] == [DONE, FAILED]
    assert "20250101_add_index" in first.summary()[1]["detail"]
    out = capsys.readouterr().out
    assert "▶ announce: started" in out and "✔ announce: done" in out and "✖ migrate: failed" in out

    broken["migrate"] = False
    calls.clear()
    second = StepLedger(path, "run-1")  # a new process would read the same file
    rollout(second)
    assert calls == ["migrate", "deploy api"]  # announce was not repeated
    rows = {r["name"]: r for r in second.summary()}
    assert rows["announce"]["status"] == SKIPPED
    assert rows["announce"]["detail"].startswith("already done at ")
    assert rows["migrate"]["status"] == DONE and rows["deploy api"]["status"] == DONE
    assert "skipped (already done at" in capsys.readouterr().out

    calls.clear()
    preview = StepLedger(path, "run-1").run("migrate", migrate, execute=False, describe="m")
    assert preview.detail.startswith("would skip (already done at")
    third = StepLedger(path, "run-1")
    rollout(third)
    assert calls == []
    assert third.done_value("migrate") == {"applied": ["20250101_add_index"]}

    other = StepLedger(path, "run-2")  # a different run starts from scratch
    assert other.summary() == [] and not other.is_done("announce")


def test_ledger_resumes_after_a_process_crash(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {SRC!r})
        from deploybook.core.steps import StepLedger
        ledger = StepLedger({str(path)!r}, "run-9")
        ledger.run("migrate", lambda: "applied 2", execute=True, describe="apply migrations")
        ledger.run("deploy api", lambda: os._exit(137), execute=True, describe="deploy api")
        """
    )
    proc = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 137
    # Simulate a torn final write as well.
    with path.open("a") as fh:
        fh.write('{"run_key": "run-9", "step": "deploy')

    calls: list[str] = []
    with pytest.warns(UserWarning, match="unreadable ledger line"):
        ledger = StepLedger(path, "run-9")
    assert ledger.is_done("migrate") and not ledger.is_done("deploy api")
    ledger.run(
        "migrate", lambda: calls.append("migrate"), execute=True, describe="apply migrations"
    )
    ledger.run(
        "deploy api", lambda: calls.append("deploy api"), execute=True, describe="deploy api"
    )
    assert calls == ["deploy api"]
    for line in path.read_text().splitlines()[-3:]:
        json.loads(line)  # new events start on a fresh line after the torn one


def test_ledger_detail_is_scrubbed(tmp_path: Path) -> None:
    canary = "canary-ledger-P9sk2LmQ"
    register(canary)
    ledger = StepLedger(tmp_path / "steps.jsonl", "run-1")
    with pytest.raises(RuntimeError):
        ledger.run(
            "x",
            lambda: (_ for _ in ()).throw(RuntimeError(f"bad {canary}")),
            execute=True,
            describe="x",
        )
    assert canary not in (tmp_path / "steps.jsonl").read_text()


# --- environment_lock ----------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {src!r})
    from deploybook.core.lock import environment_lock
    with environment_lock({lock_dir!r}, "production", operator="alice", runbook="03-rollout",
                          run_id="r-42"):
        print("locked", flush=True)
        sys.stdin.read()  # hold until the test closes stdin (or kills us)
    print("released", flush=True)
    """
)


def _start_holder(lock_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [PY, "-c", HOLDER.format(src=SRC, lock_dir=str(lock_dir))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_holder_gets_lock_held(tmp_path: Path) -> None:
    proc = _start_holder(tmp_path)
    try:
        with pytest.raises(LockHeld) as info:
            with environment_lock(tmp_path, "production", operator="bob", runbook="05-rollback"):
                pytest.fail("acquired a lock another process holds")
        message = str(info.value)
        assert "alice" in message and "03-rollout" in message and "r-42" in message
        assert f"pid {proc.pid}" in message and "since 20" in message
        # Another environment is independent.
        with environment_lock(tmp_path, "staging", operator="bob"):
            pass
    finally:
        out, _ = proc.communicate(timeout=10)  # closing stdin releases the lock
    assert "released" in out
    with environment_lock(tmp_path, "production", operator="bob") as lock:
        assert lock.took_over is None  # a clean release leaves nothing stale


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    proc = _start_holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)  # reaps it and closes the pipes
    with pytest.warns(UserWarning, match="stale lock.*process is gone.*alice"):
        with environment_lock(tmp_path, "production", operator="bob") as lock:
            assert lock.took_over and lock.took_over["pid"] == proc.pid
            assert json.loads((tmp_path / "production.lock").read_text())["operator"] == "bob"
    assert (tmp_path / "production.lock").read_text() == ""


def test_lock_in_the_same_process_names_the_kernel(tmp_path: Path) -> None:
    with environment_lock(tmp_path, "staging", operator="alice"):
        with pytest.raises(LockHeld, match="this very process"):
            with environment_lock(tmp_path, "staging", operator="alice"):
                pass


def test_lock_refuses_a_bad_environment_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        with environment_lock(tmp_path, "../etc"):
            pass
