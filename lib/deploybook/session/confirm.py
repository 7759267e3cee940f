"""Steps that wait for the lead: in JupyterLab with ``execute=True``, nothing changes a
system until the lead has read what the step will do and clicked *Confirm*.

JupyterLab's Run All stops at the first cell that ends in an error, so an unconfirmed
step shows its button and raises `WaitingForLead` — a short message, not a traceback
(`deploybook.session.panels`). After the click, running the cell again (or Run All)
proceeds: finished steps are not repeated (the step ledger), the confirmed one runs, and
the next unconfirmed one stops it again. Headless runs never wait: parameters are the
lead's word there, and this module does nothing.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from deploybook.core.checks import Check, Status
from deploybook.core.clock import utcnow
from deploybook.core.secrets import scrub
from deploybook.errors import DeploybookError
from deploybook.session import answers, approvals


class WaitingForLead(DeploybookError):
    """A step that changes a system has not been confirmed yet; Run All stops here."""

    what_to_do = "read what the step will do, click Confirm, then run this cell again"

    def __init__(self, message: str, what_to_do: str | None = None) -> None:
        super().__init__(message)
        self.what_to_do = what_to_do or type(self).what_to_do


@dataclass(frozen=True)
class Confirmed:
    """Who confirmed a step, and when (shown and recorded as a decision)."""

    step: str
    by: str
    at: str


# Confirmations given in this kernel, by run and step: a re-run after the click proceeds.
_GIVEN: dict[str, Confirmed] = {}
# What each confirmed step did when it ran (a step object), so a later run of the cell
# records it as done rather than as a resumed skip.
_DONE: dict[str, Any] = {}


def waits(execute: bool) -> bool:
    """True when steps wait for the lead: a person is there and the run changes systems."""
    return execute and approvals.is_interactive()


def given(key: str) -> Confirmed | None:
    """The confirmation of the step ``key`` in this kernel, if the lead gave it."""
    return _GIVEN.get(key)


def carried_out(key: str, step: Any = None) -> Any:
    """Remember how the confirmed step ``key`` went (with ``step``), or recall it."""
    if step is not None and key in _GIVEN:
        _DONE.setdefault(key, step)
    return _DONE.get(key)


def require(
    key: str, number: int, total: int, name: str, describe: str, operator: str, section: str
) -> Check | None:
    """Return the decision once the lead has confirmed step ``number``; otherwise show what
    it will do with a Confirm button and stop the cell (`WaitingForLead`)."""
    if confirmed := _GIVEN.get(key):
        return Check(
            f"confirmed: {name}",
            section,
            Status.PASS,
            f"step {number} of {total} confirmed by {confirmed.by} at {confirmed.at}",
            critical=False,
        )
    _ask(key, number, total, name, describe, operator)
    raise WaitingForLead(f"waiting for you at step {number} of {total} ({name})")


def _ask(key: str, number: int, total: int, name: str, describe: str, operator: str) -> None:
    import ipywidgets as w
    from IPython.display import display

    button = w.Button(
        description=f"Confirm step {number}",
        button_style="warning",
        icon="check",
        layout=w.Layout(width="auto"),
    )
    feedback = w.HTML()

    def click(_button: object = None) -> None:
        _GIVEN[key] = Confirmed(name, operator or "the lead", utcnow())
        button.disabled = True
        feedback.value = (
            f"<span class='deploybook-confirmed'>&#10003; confirmed at {html.escape(utcnow())}"
            " — run this cell again (or Run All) to carry it out</span>"
        )

    button.on_click(click)
    text = html.escape(scrub(describe or name))
    box = w.VBox(
        [
            w.HTML(
                f"<div class='deploybook-confirm'><b>Step {number} of {total}: "
                f"{html.escape(name)}</b> changes a system. It will:<br><code>{text}</code></div>"
            ),
            w.HBox([button, feedback]),
        ]
    )
    box.confirm = click  # for tests that drive the form without a browser
    display(box)


def typed_box(confirmation: Any, prompt: str) -> Any:
    """The typed confirmation (a restore's target) as a box, a Confirm button and feedback
    saying whether what was typed matches; a re-run of the cell keeps what was typed."""
    import ipywidgets as w
    from IPython.display import display

    key = ("confirm", confirmation.prompt, confirmation.expected)
    box = w.Text(
        value=answers.recall(key, ""),
        placeholder=f"type {confirmation.expected} to confirm",
        description="Confirm",
    )
    button = w.Button(description="Confirm", button_style="danger", icon="check")
    feedback = w.HTML()
    confirmation.widget = box

    def check(_button: object = None) -> None:
        answers.remember(key, box.value)
        colour = "#070" if confirmation.confirmed else "#b00"
        feedback.value = (
            f"<span style='color:{colour}'>{html.escape(confirmation.explain())}"
            + (" — now run the next cell" if confirmation.confirmed else "")
            + "</span>"
        )

    button.on_click(check)
    if box.value:
        check()
    display(w.VBox([w.HTML(f"<b>{html.escape(prompt)}</b>"), w.HBox([box, button]), feedback]))
    confirmation.confirm = check  # for tests that drive the box without a browser
    return confirmation
