"""The release as an Airflow DAG, built from a spec file (``$DEPLOYBOOK_DAG_SPEC``).

Each task is ``deploybook run RUNBOOK --env ENV --release R -p …`` by the project's venv, so
the records, ledger, HTML and gates stay deploybook's: a task fails exactly when its
runbook's gate does, and its log ends with the gate's message. After every runbook the task
pushes the records to object storage (``deploybook audit push``) when ``records_url`` is
set, passed or failed. Before an environment marked ``approval`` an ``ApprovalOperator``
waits for a human; its body shows what is approved (orchestrate/approval_body.py). When a
production 04 fails on a breached SLA (orchestrate/breach.py), 05 runs. Last,
``deploybook audit verify`` checks the ledgers (and the remote copy).

This file runs in Airflow's own venv (.venv-airflow): it imports Airflow and PyYAML only,
never deploybook, whose venv it calls by absolute path.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG

HERE = Path(__file__).resolve().parent
PROJECT = Path(os.environ.get("DEPLOYBOOK_PROJECT") or HERE.parents[1]).resolve()
DEFAULT_SPEC = HERE / "sandbox.yaml"
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def _expand(text: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` from the environment (non-secret settings only)."""
    return _VAR.sub(lambda m: os.environ.get(m["name"]) or (m["default"] or ""), text)


def load_spec(path: Path) -> dict[str, Any]:
    """The spec, with the few keys every DAG needs checked before Airflow sees it."""
    spec = yaml.safe_load(_expand(path.read_text(encoding="utf-8")))
    for key in ("dag_id", "release", "environments"):
        if not spec.get(key):
            raise ValueError(f"{path}: {key} is required")
    return spec


def _task_id(env: str, runbook: str) -> str:
    return f"{env}.{runbook}"


def _argv_parameters(parameters: dict[str, Any]) -> str:
    """``-p NAME VALUE`` pairs, each value as the YAML deploybook parses, shell-quoted."""
    out = []
    for name, value in parameters.items():
        text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
        text = text.strip().removesuffix("...").strip()
        out += ["-p", shlex.quote(name), shlex.quote(text)]
    return " ".join(out)


def _with_push(command: str, spec: dict[str, Any], env: str) -> str:
    """Run ``command``, then push the records whatever it did; exit with its status."""
    url = spec.get("records_url") or ""
    if not url:
        return command
    deploybook = PROJECT / ".venv" / "bin" / "deploybook"
    push = f"{deploybook} audit push {shlex.quote(url)} --env {shlex.quote(env)}"
    return f"{command}; rc=$?; {push} || exit 1; exit $rc"


def _defaults(spec: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    merged = {**(spec.get("task_defaults") or {}), **entry}
    return {
        "retries": int(merged.get("retries", 0)),
        "retry_delay": timedelta(seconds=float(merged.get("retry_delay_s", 30))),
        "execution_timeout": timedelta(seconds=float(merged.get("timeout_s", 900))),
    }


def runbook_task(spec: dict[str, Any], env: str, entry: dict[str, Any], **kw: Any) -> Any:
    """One ``deploybook run`` as a BashOperator (cwd the project, environment inherited)."""
    parameters = {**(spec.get("parameters") or {}), **(entry.get("parameters") or {})}
    deploybook = PROJECT / ".venv" / "bin" / "deploybook"
    command = (
        f"{deploybook} run {shlex.quote(entry['runbook'])} --env {shlex.quote(env)} "
        f"--release {shlex.quote(spec['release'])} {_argv_parameters(parameters)}"
    )
    return BashOperator(
        task_id=_task_id(env, entry["runbook"]),
        bash_command=_with_push(command, spec, env),
        cwd=str(PROJECT),
        append_env=True,
        **_defaults(spec, entry),
        **kw,
    )


def command_task(spec: dict[str, Any], env: str, entry: dict[str, Any]) -> Any:
    """A step that is not a runbook (``task: NAME``, ``command: SHELL``), e.g. the sandbox's
    approvers signing; run in the project with ``{python}``/``{deploybook}`` filled in."""
    bin_ = PROJECT / ".venv" / "bin"
    command = entry["command"].format(
        python=bin_ / "python", deploybook=bin_ / "deploybook", env=env, release=spec["release"]
    )
    return BashOperator(
        task_id=_task_id(env, entry["task"]),
        bash_command=command,
        cwd=str(PROJECT),
        append_env=True,
        **_defaults(spec, entry),
    )


class ReleaseApproval(ApprovalOperator):
    """An ApprovalOperator whose body is computed when it runs, from the staging records."""

    def __init__(self, *, body_command: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body_command = body_command

    def execute(self, context: Any) -> Any:
        made = subprocess.run(
            self.body_command, cwd=PROJECT, capture_output=True, text=True, timeout=120
        )
        self.body = made.stdout if made.returncode == 0 else f"(no summary: {made.stderr[-500:]})"
        return super().execute(context)


def approval_task(spec: dict[str, Any], env: str, approval: dict[str, Any]) -> Any:
    """The human approval in front of ``env``; Reject fails the run (fail_on_reject)."""
    staging = approval.get("staging_env") or spec["environments"][0]["env"]
    command = [
        str(PROJECT / ".venv" / "bin" / "python"),
        str(PROJECT / "orchestrate" / "approval_body.py"),
        "--staging-env",
        staging,
        "--env",
        env,
        "--release",
        spec["release"],
        "--records-url",
        spec.get("records_url") or "",
    ]
    return ReleaseApproval(
        task_id=f"{env}.approval",
        subject=f"Approve release {spec['release']} to {env}?",
        body_command=command,
        fail_on_reject=bool(approval.get("fail_on_reject", True)),
        execution_timeout=None,
    )


def build_dag(spec: dict[str, Any]) -> DAG:
    """The release DAG: environments in order, approvals where the spec puts them."""
    release = spec["release"]
    with DAG(
        dag_id=spec["dag_id"],
        schedule=None,
        catchup=False,
        max_active_runs=1,
        tags=["deploybook", release],
        doc_md=__doc__,
        render_template_as_native_obj=True,
    ) as dag:
        previous: Any = None
        for environment in spec["environments"]:
            env = environment["env"]
            approval = environment.get("approval")
            for entry in environment["runbooks"]:
                name = entry.get("runbook") or entry.get("task")
                if approval and name == approval.get("before", name):
                    gate = approval_task(spec, env, approval)
                    previous = previous >> gate if previous is not None else gate
                    approval = None
                make = command_task if "command" in entry else runbook_task
                task = make(spec, env, entry)
                previous = previous >> task if previous is not None else task
            if rollback := environment.get("rollback"):
                _rollback_branch(spec, env, previous, rollback)
        deploybook = PROJECT / ".venv" / "bin" / "deploybook"
        verify = f"{deploybook} audit verify"
        if url := spec.get("records_url"):
            verify += f" && {deploybook} audit verify --from {shlex.quote(url)}"
        previous >> BashOperator(
            task_id="audit.verify", bash_command=verify, cwd=str(PROJECT), append_env=True
        )
    return dag


def _rollback_branch(spec: dict[str, Any], env: str, smoke: Any, rollback: dict[str, Any]) -> None:
    """04 failed → was it a breach? → 05 (nothing runs when 04 passed)."""
    python = PROJECT / ".venv" / "bin" / "python"
    breach = BashOperator(
        task_id=f"{env}.breach",
        bash_command=f"{python} orchestrate/breach.py --env {shlex.quote(env)} "
        f"--release {shlex.quote(spec['release'])}",
        cwd=str(PROJECT),
        append_env=True,
        trigger_rule="all_failed",
    )
    smoke >> breach >> runbook_task(spec, env, rollback)


dag = build_dag(load_spec(Path(os.environ.get("DEPLOYBOOK_DAG_SPEC") or DEFAULT_SPEC)))
