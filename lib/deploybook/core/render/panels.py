"""Expected refusals as a short red panel: what happened and what to do, no traceback."""

from __future__ import annotations

from deploybook.core.render.markup import e

# What a lead can do about each expected refusal, by exception class name.
WHAT_TO_DO = {
    "GateFailed": "fix what the failed checks above name, run their cells again, then this one",
    "RestoreRefused": "check the restore target and the typed confirmation, then run again",
    "ConfigError": "correct the parameter or the params file named above, then run again",
    "SecretMissing": "set the named variable in the environment JupyterLab was started from",
    "LockHeld": "wait for the other run to finish (or clear a stale lock), then run again",
    "WaitingForLead": "read what the step will do, click Confirm, then run this cell again",
    "NotSealed": "run this cell again and press Ctrl+S while it waits for the save",
}


def refusal_html(kind: str, message: str, what_to_do: str | None = None) -> str:
    """A refusal the runbook expects (a gate, a safety rule, a bad parameter)."""
    todo = what_to_do or WHAT_TO_DO.get(kind, "read the message, fix the cause, run again")
    return (
        "<div class='deploybook-refusal' style='border-left:6px solid #b00;background:#fde7e9;"
        "padding:8px 12px;margin:4px 0;color:#300;overflow-wrap:anywhere'>"
        f"<b style='color:#b00'>&#10007; {e(kind)}</b>: {e(message)}"
        f"<br><b>What to do:</b> {e(todo)}</div>"
    )


def refusal_text(kind: str, message: str, what_to_do: str | None = None) -> str:
    todo = what_to_do or WHAT_TO_DO.get(kind, "read the message, fix the cause, run again")
    return f"{kind}: {message}\nWhat to do: {todo}"
