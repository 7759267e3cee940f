"""``deploybook sandbox …``: the local rehearsal stack's subcommands (argument handling;
the work is `deploybook.sandbox.stack`)."""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from deploybook.errors import DeploybookError


def cmd_sandbox(args: argparse.Namespace) -> int:
    from deploybook.core import paths
    from deploybook.sandbox import platform, stack

    action = args.action
    if action == "up":
        stack.up(password=None)
    elif action == "down":
        stack.down(purge=args.purge)
    elif action == "status":
        report = stack.status()
        print(json.dumps(report, indent=2))
        return 0 if report.get("running") else 3
    elif action == "env":
        values = stack.sandbox_environment(args.env)
        if not values:
            raise DeploybookError("sandbox is not running: run `deploybook sandbox up` first")
        for key, value in sorted(values.items()):
            print(f"export {key}={shlex.quote(str(value))}")  # for `eval "$(…)"` in a shell
    elif action == "platform-env":
        path = platform.env_file(paths.state_dir(), args.env)
        if not path.is_file():
            raise DeploybookError(
                f"no platform variables for {args.env!r} at {path}: "
                "run `deploybook sandbox up` (a stack started before they existed: down, then up)"
            )
        print(path.read_text(encoding="utf-8"), end="")
    elif action == "deploy":
        stack.admin(f"/admin/{args.env}/{args.service}/version", {"version": args.version})
        print(f"{args.env}/{args.service} now runs {args.version}")
    elif action == "scale":
        stack.admin(f"/admin/{args.env}/{args.service}/scale", {"replicas": args.replicas})
        print(f"{args.env}/{args.service} scaled to {args.replicas}")
    elif action == "fault":
        path = f"/admin/{args.env}/{args.service}/fault"
        if args.clear:
            stack.admin(path, method="DELETE")
            print(f"{args.env}/{args.service}: fault cleared")
        else:
            fault = {
                "error_rate": args.error_rate,
                "status": args.status,
                "latency_ms": args.latency_ms,
                "down": args.down,
                "paths": args.path or [],
                "version": args.only_version,
            }
            stack.admin(path, fault)
            print(f"{args.env}/{args.service}: fault {json.dumps(fault)}")
    elif action == "messages":
        print(json.dumps(stack.admin("/admin/messages", method="GET"), indent=2))
    return 0


def add_sandbox_parser(sub: Any) -> None:
    """The ``sandbox`` subcommand and its actions, on the main parser's subparsers."""
    sbx = sub.add_parser("sandbox", help="the local rehearsal stack")
    sbx_sub = sbx.add_subparsers(dest="action", required=True)
    sbx_sub.add_parser("up", help="start (or reuse) the stack").set_defaults(func=cmd_sandbox)
    down = sbx_sub.add_parser("down", help="stop every process of the stack")
    down.add_argument("--purge", action="store_true", help="also delete its data and checkout")
    down.set_defaults(func=cmd_sandbox)
    sbx_sub.add_parser("status", help="what is running (exit 3 if down)").set_defaults(
        func=cmd_sandbox
    )
    env = sbx_sub.add_parser("env", help="print the variables a sandbox env resolves against")
    env.add_argument("env")
    env.set_defaults(func=cmd_sandbox)
    listing = sbx_sub.add_parser(
        "platform-env",
        help="print a sandbox env's variables as its hosting platform lists them (NAME=value)",
    )
    listing.add_argument("--env", required=True)
    listing.set_defaults(func=cmd_sandbox)
    for name, helptext in (
        ("deploy", "switch a stand-in to a version"),
        ("scale", "set replicas"),
        ("fault", "inject or clear a fault"),
    ):
        p = sbx_sub.add_parser(name, help=helptext)
        p.add_argument("--env", required=True)
        p.add_argument("--service", required=True)
        if name == "deploy":
            p.add_argument("--version", required=True)
        if name == "scale":
            p.add_argument("--replicas", type=int, required=True)
        if name == "fault":
            p.add_argument("--error-rate", type=float, default=1.0)
            p.add_argument("--status", type=int, default=503)
            p.add_argument("--latency-ms", type=int, default=0)
            p.add_argument("--down", action="store_true")
            p.add_argument("--path", action="append", help="only these paths (repeatable)")
            p.add_argument("--clear", action="store_true")
            p.add_argument("--only-version", help="a bug in this build: active only while it runs")
        p.set_defaults(func=cmd_sandbox)
    sbx_sub.add_parser("messages", help="webhook and email messages received").set_defaults(
        func=cmd_sandbox
    )
