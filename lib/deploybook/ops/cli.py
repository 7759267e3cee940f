"""The ``deploybook`` command: argument handling only; the work lives in the library.

Exit codes: 0 success, 1 a gate failed or a step failed, 2 bad arguments or params.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError, DeploybookError
from deploybook.ops import lean_imports
from deploybook.ops.sandboxcmd import add_sandbox_parser


def _parameter(pairs: list[list[str]] | None) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs; values are read as YAML (``true``, ``3``, ``{PM: ann}``)."""
    result: dict[str, Any] = {}
    for name, value in pairs or []:
        try:
            result[name] = yaml.safe_load(value)
        except yaml.YAMLError:
            result[name] = value
        if (
            isinstance(result[name], str | int | float | bool | dict | list) is False
            and result[name] is not None
        ):
            raise ConfigError(f"parameter {name}: unsupported value {value!r}", key=name)
    return result


def cmd_run(args: argparse.Namespace) -> int:
    from deploybook.ops.runner import run_runbook

    result = run_runbook(
        args.runbook,
        args.env,
        args.release,
        _parameter(args.parameter),
        params_file=Path(args.params_file) if args.params_file else None,
        html=not args.no_html,
        log_output=args.log_output,
    )
    print(f"record:  {result.record}")
    if result.html:
        print(f"html:    {result.html}")
    print(f"ledger:  entry {result.entry.get('seq')} ({result.entry.get('hash', '')[:12]})")
    print(f"status:  {result.status} in {result.duration_s:.1f} s")
    if result.error:
        print(f"error:   {result.error}", file=sys.stderr)
    return result.exit_code


def cmd_open(args: argparse.Namespace) -> int:
    from deploybook.ops.opener import lab_url, prepare_copy

    copy, entry = prepare_copy(
        args.runbook,
        args.env,
        args.release,
        _parameter(args.parameter),
        params_file=Path(args.params_file) if args.params_file else None,
    )
    print(f"copy:    {copy}")
    print(f"ledger:  entry {entry.get('seq')} (open: sealed by its gate cell)")
    if not args.no_lab:
        print(f"open:    {lab_url(copy)}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from deploybook.core import anchors, audit, paths

    outputs = Path(args.outputs).resolve() if args.outputs else paths.outputs_dir()
    expected = _expected_heads(args.expect_head, args.heads_file)
    if args.from_url:
        return _verify_remote(args, expected)
    count, problems, heads = anchors.verify(outputs, args.env or None, expected)
    for problem in problems:
        print(f"TAMPERED  {problem}")
    for head in heads:
        print(f"head      {head.line()}")
    for anchor in expected:
        print(f"expected  {anchor.line() if anchor.env else anchor.head}")
    for env in _params_envs_without_ledger(outputs, args.env):
        print(f"note      {env}: a params file but no ledger (nothing recorded yet)")
    for env, record in audit.crashed(outputs, args.env or None):
        print(f"CRASHED   {env}: {record}: the run's kernel died; partial record, kept as such")
    for env, copy in audit.unsealed(outputs, args.env or None):
        print(f"OPEN      {env}: {copy}: open/abandoned copy, never sealed (not a record)")
    if problems:
        print(
            f"{len(problems)} problem(s) in {count} ledger entries under {outputs}", file=sys.stderr
        )
        return 1
    print(f"ok: {count} ledger entries verified under {outputs}")
    return 0


def _verify_remote(args: argparse.Namespace, expected: list[Any]) -> int:
    """``audit verify --from s3://…``: the remote copy's SHA-256s, then its ledgers."""
    import shutil

    from deploybook.core import anchors
    from deploybook.ops import remote

    copy, fetched, bad = remote.fetched_copy(args.from_url)
    try:
        count, problems, heads = anchors.verify(copy, args.env or None, expected)
        for line in [*bad, *(str(p) for p in problems)]:
            print(f"TAMPERED  {line}")
        for head in heads:
            print(f"head      {head.line()}")
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    if bad or problems or not count:
        why = f"{len(bad) + len(problems)} problem(s)" if bad or problems else "no ledger entries"
        print(f"{why} in {fetched} objects at {args.from_url}", file=sys.stderr)
        return 1
    print(f"ok: {count} ledger entries verified from {fetched} objects at {args.from_url}")
    return 0


def cmd_audit_push(args: argparse.Namespace) -> int:
    from deploybook.core import paths
    from deploybook.ops import remote

    outputs = Path(args.outputs).resolve() if args.outputs else paths.outputs_dir()
    result = remote.push(args.url, outputs, args.env or None)
    for rel in result.sent:
        print(f"sent      {rel}")
    print(f"ok: {len(result.sent)} sent, {len(result.unchanged)} unchanged at {args.url}")
    return 0


def _expected_heads(values: list[str] | None, files: list[str] | None) -> list[Any]:
    """Anchors from --expect-head values and from --heads-file files."""
    from deploybook.core import anchors

    expected = [anchors.parse_expected(v) for v in values or []]
    for name in files or []:
        try:
            found = anchors.parse(Path(name).read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise ConfigError(f"--heads-file {name}: cannot read it ({exc.strerror})") from None
        if not found:
            raise ConfigError(f"--heads-file {name}: no 'ledger ENV length N head HASH' in it")
        expected += found
    return expected


def _params_envs_without_ledger(outputs: Path, only: list[str] | None) -> list[str]:
    """Environments with a params file in params/ whose ledger does not exist."""
    from deploybook.core import audit, paths

    names = []
    for path in sorted((paths.project_root() / "params").glob("*.yaml")):
        try:
            tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        env = (tree.get("environment") or {}).get("name") if isinstance(tree, dict) else None
        if isinstance(env, str) and (not only or env in only):
            if not audit.ledger_path(outputs, env).exists():
                names.append(env)
    return names


def cmd_audit_diff(args: argparse.Namespace) -> int:
    from deploybook.core.render.diff import diff_text, write_diff_html
    from deploybook.ops.runner import resolve_runbook
    from deploybook.session.recorddiff import diff

    changes = diff(
        args.a,
        args.b,
        env=args.env,
        release=args.release,
        runbook=resolve_runbook(args.runbook) if args.runbook else None,
        outputs=Path(args.outputs).resolve() if args.outputs else None,
    )
    print(diff_text(changes))
    if args.html:
        print(f"html:    {write_diff_html(changes, Path(args.html))}")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from deploybook.ops.approve import approve

    path, approval = approve(
        args.env,
        args.release,
        args.role,
        key=Path(args.key).expanduser() if args.key else None,
        name=args.name,
        params_file=Path(args.params_file) if args.params_file else None,
        outputs=Path(args.outputs).resolve() if args.outputs else None,
        confirm=None if args.yes else input,
    )
    print(f"approval: {path}")
    if args.print:
        print(approval.text(), end="")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from deploybook.core import paths
    from deploybook.session import overview as report

    outputs = Path(args.outputs).resolve() if args.outputs else paths.outputs_dir()
    path = report.build_report(args.env, args.release, outputs, review=args.no_input)
    print(f"overview: {path}")
    return 0


def cmd_rehearse(args: argparse.Namespace) -> int:
    from deploybook.ops.rehearsal import rehearse

    return rehearse(keep_up=args.keep_up)


def _runbook_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """What `run` and `open` both take: the runbook, env, release, parameters, params file."""
    parser.add_argument("runbook", help="01-preconditions … 05-rollback (or 01 … 05)")
    parser.add_argument(
        "--env", required=True, help="environment; params/<env>.yaml unless --params-file"
    )
    parser.add_argument("--release", required=True, help="release tag, SemVer vX.Y.Z")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="notebook parameter (never a secret); VALUE is read as YAML",
    )
    parser.add_argument("--params-file", help="params YAML (default params/<env>.yaml)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deploybook", description="Deployment runbooks as parameterised Jupyter notebooks."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = _runbook_arguments(sub.add_parser("run", help="execute a runbook into an audit record"))
    run.add_argument("--no-html", action="store_true", help="skip the HTML rendering")
    run.add_argument("--log-output", action="store_true", help="stream cell output while running")
    run.set_defaults(func=cmd_run)

    opn = _runbook_arguments(
        sub.add_parser("open", help="a prepared working copy of a runbook, in JupyterLab")
    )
    opn.add_argument("--no-lab", action="store_true", help="prepare the copy only")
    opn.set_defaults(func=cmd_open)

    aud = sub.add_parser("audit", help="audit trail commands")
    aud_sub = aud.add_subparsers(dest="action", required=True)
    verify = aud_sub.add_parser("verify", help="detect edited, deleted or reordered records")
    verify.add_argument("--env", action="append", help="only this environment (repeatable)")
    verify.add_argument("--outputs", help="outputs folder (default outputs/)")
    verify.add_argument(
        "--expect-head",
        action="append",
        metavar="HASH",
        help="a ledger head an announcement carried (HASH, ENV:HASH or ENV:LENGTH:HASH); "
        "the ledger must still hold it (repeatable)",
    )
    verify.add_argument(
        "--heads-file",
        action="append",
        metavar="FILE",
        help="a file of heads collected from the receivers (e.g. `deploybook sandbox messages`"
        " output, an email, a Slack export): every 'ledger ENV length N head HASH' in it",
    )
    verify.add_argument(
        "--from", dest="from_url", metavar="URL", help="verify the copy at s3://BUCKET/PREFIX"
    )
    verify.set_defaults(func=cmd_audit_verify)
    push = aud_sub.add_parser("push", help="copy records, HTML and ledgers to s3://BUCKET/PREFIX")
    push.add_argument("url", help="s3://BUCKET[/PREFIX]; endpoint: DEPLOYBOOK_S3_ENDPOINT")
    push.add_argument("--env", action="append", help="only this environment (repeatable)")
    push.add_argument("--outputs", help="outputs folder (default outputs/)")
    push.set_defaults(func=cmd_audit_push)

    apv = sub.add_parser(
        "approve", help="sign a role's approval of what 03 will roll out (your SSH key)"
    )
    apv.add_argument("--env", required=True, help="environment to approve (e.g. production)")
    apv.add_argument("--release", required=True, help="release tag, SemVer vX.Y.Z")
    apv.add_argument("--role", required=True, help="your sign-off role (params signoff_roles)")
    apv.add_argument(
        "--key",
        help="SSH key to sign with (default ~/.ssh/id_ed25519; a .pub "
        "whose private half is in ssh-agent works too)",
    )
    apv.add_argument("--name", help="your name in the statement (default: the key's comment)")
    apv.add_argument("--params-file", help="params YAML (default params/<env>.yaml)")
    apv.add_argument("--outputs", help="outputs folder holding the records (default outputs/)")
    apv.add_argument("--yes", action="store_true", help="do not ask to type the role")
    apv.add_argument("--print", action="store_true", help="also print the approval's text")
    apv.set_defaults(func=cmd_approve)

    dif = aud_sub.add_parser(
        "diff",
        help="what differs between two records: checks, evidence, parameters, versions",
        description="A and B are record paths, environment names (their latest RUNBOOK "
        "record of RELEASE: `staging production`), or `latest previous` with --env.",
    )
    dif.add_argument("a", help="record path, environment, or latest/previous")
    dif.add_argument("b", help="record path, environment, or latest/previous")
    dif.add_argument("--env", help="environment for latest/previous")
    dif.add_argument("--release", help="release tag, SemVer vX.Y.Z")
    dif.add_argument("--runbook", help="01-preconditions … 05-rollback (or 01 … 05)")
    dif.add_argument("--outputs", help="outputs folder (default outputs/)")
    dif.add_argument("--html", help="also write the diff as an HTML page here")
    dif.set_defaults(func=cmd_audit_diff)

    add_sandbox_parser(sub)

    rep = sub.add_parser("report", help="build the release overview page (HTML)")
    rep.add_argument("--env", required=True, help="environment whose ledger to read")
    rep.add_argument("--release", required=True, help="release tag, SemVer vX.Y.Z")
    rep.add_argument("--outputs", help="outputs folder (default outputs/)")
    rep.add_argument(
        "--no-input",
        action="store_true",
        help="also render each record's code-free reviewer HTML and link it",
    )
    rep.set_defaults(func=cmd_report)

    reh = sub.add_parser("rehearse", help="full rehearsal of the release on the sandbox")
    reh.add_argument("--keep-up", action="store_true", help="leave the stack running afterwards")
    reh.set_defaults(func=cmd_rehearse)
    return parser


def main(argv: list[str] | None = None) -> int:
    lean_imports.skip_unused()  # seconds of grammar compiling no command uses
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"deploybook: error: {scrub(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except DeploybookError as exc:
        print(f"deploybook: {type(exc).__name__}: {scrub(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("deploybook: interrupted", file=sys.stderr)
        return 130
