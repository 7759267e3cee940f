"""Manual spot checks after the smoke tests (plan section 15): what a person must see work.

The params file lists them (``spot_checks``, e.g. one per story of the epic). Like the
sign-offs in `deploybook.session.approvals`: a headless run takes them from the parameter
``spot_checks_confirmed`` and never waits; an interactive kernel shows a checkbox per item,
a "checked by" box and a Record button, and the next cell (`cells.record_spot_checks`)
reads what was recorded, glues it and turns it into checks (`spot_check_results`). An
unconfirmed item warns in a staging role and fails the gate in a production role.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from deploybook.core import render
from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.core.steps import utcnow
from deploybook.errors import ConfigError
from deploybook.session import answers
from deploybook.session.approvals import _clean_name, is_interactive
from deploybook.session.runbook import Runbook

__all__ = ["SpotCheck", "SpotChecks", "item_keys", "spot_check_results", "spot_checks"]

SECTION = "15"
_TAG = re.compile(r"\(([^()]+)\)\s*$")  # "… (4.1)" -> "4.1"


@dataclass
class SpotCheck:
    """One item the lead confirmed: who checked it, when, and how it was recorded."""

    item: str
    by: str
    at: str
    source: str  # "parameter" or "widget"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SpotChecks(list):
    """The confirmed items so far; in interactive mode it fills when Record is clicked."""

    def __init__(self, items: list[str], production: bool, operator: str) -> None:
        super().__init__()
        self.items = list(items)
        self.production = production
        self.operator = operator
        self.unknown: list[str] = []  # parameter keys naming no configured item
        self.widget: Any = None
        self.recorded = False  # the form's Record was clicked (in this kernel)

    def get(self, item: str) -> SpotCheck | None:
        return next((s for s in self if s.item == item), None)

    def to_records(self) -> list[dict[str, Any]]:
        """Every configured item, confirmed or not (`scraps.SpotCheckRecords`)."""
        rows = []
        for item in self.items:
            done = self.get(item)
            facts = done.as_dict() if done else dict.fromkeys(("by", "at", "source"))
            rows.append({**facts, "item": item, "confirmed": done is not None})
        return rows

    def _repr_html_(self) -> str:
        return render.spot_checks_html(self)

    def __repr__(self) -> str:
        return render.spot_checks_text(self)


def item_keys(item: str) -> set[str]:
    """What a parameter key may name an item by: its text, or its trailing tag ("4.1")."""
    keys = {" ".join(item.split()).casefold()}
    if tag := _TAG.search(item):
        keys.add(tag.group(1).strip().casefold())
    return keys


def _normalise(confirmed: Any, operator: str) -> dict[str, str | None]:
    """key -> who checked (None: not confirmed) from a dict or a list of keys."""
    if confirmed is None:
        return {}
    if isinstance(confirmed, Mapping):
        out = {}
        for key, value in confirmed.items():
            who = operator if value is True else _clean_name(value)
            out[" ".join(str(key).split()).casefold()] = who
        return out
    if isinstance(confirmed, list | tuple):
        return {" ".join(str(k).split()).casefold(): _clean_name(operator) for k in confirmed}
    raise ConfigError(
        "spot_checks_confirmed must map each spot check (its text or tag, e.g. '4.1') to who "
        f'checked it, e.g. {{"4.1": "Dana Lee"}}, or list them; got {type(confirmed).__name__}'
    )


def _from_parameter(spot: SpotChecks, confirmed: Any) -> SpotChecks:
    given, now, matched = _normalise(confirmed, spot.operator), utcnow(), set()
    for item in spot.items:
        keys = item_keys(item) & set(given)
        matched |= keys
        who = next((given[k] for k in sorted(keys) if given[k]), None)
        if who:
            spot.append(SpotCheck(item, scrub(who), now, "parameter"))
    spot.unknown = sorted(k for k in given if k not in matched)
    return spot


def _form(spot: SpotChecks, confirmed: Any) -> SpotChecks:
    """A tick per item and a "checked by" box; Record copies them into the SpotChecks."""
    import ipywidgets as w
    from IPython.display import display

    given = _normalise(confirmed, spot.operator)
    who = w.Text(value=spot.operator, placeholder="who checked", description="Checked by")
    rows = {
        item: w.Checkbox(
            value=any(given.get(k) for k in item_keys(item)),
            description=item,
            indent=False,
            layout=w.Layout(width="auto"),  # the whole item is read, not its first words
        )
        for item in spot.items
    }
    button = w.Button(
        description="Record spot checks",
        button_style="primary",
        icon="check",
        layout=w.Layout(width="auto"),
    )
    output = w.Output()
    # A re-run of this cell (Run All) keeps what was recorded before in this kernel.
    key = ("spot checks", tuple(spot.items), spot.operator)
    spot.recorded = answers.recall(key) is not None
    for earlier in answers.recall(key, []):
        spot.append(earlier)
        rows[earlier.item].value, who.value = True, earlier.by
    if spot:
        with output:
            print(f"Kept from earlier in this session: {len(spot)} confirmed item(s)")

    def record(_button: Any = None) -> None:
        now, name = utcnow(), _clean_name(who.value)
        spot.clear()
        output.clear_output()
        with output:
            if not name:
                print("Not recorded: enter who checked, then click Record again.")
                return
            for item, box in rows.items():
                if box.value:
                    spot.append(SpotCheck(item, scrub(name), now, "widget"))
            answers.remember(key, list(spot))
            spot.recorded = True
            print(f"Recorded at {now} by {name}:")
            for item in spot.items:
                print(f"  [{'x' if spot.get(item) else ' '}] {item}")

    button.on_click(record)
    spot.widget = w.VBox(
        [w.HTML(f"<b>Manual spot checks (plan section {SECTION})</b>"), who]
        + list(rows.values())
        + [button, output]
    )
    spot.widget.record, spot.widget.rows, spot.widget.who = record, rows, who
    display(spot.widget)
    return spot


def spot_checks(
    run: Runbook, confirmed: Mapping[str, Any] | list[str] | None, interactive: bool | None = None
) -> SpotChecks:
    """The params' spot checks, confirmed from ``confirmed`` (headless) or a widget form.

    ``confirmed`` maps an item (its text or its tag such as "4.1") to who checked it, or
    lists items the operator checked. Interactive returns at once; the form fills the
    returned object when the lead clicks Record.
    """
    params = run.params
    spot = SpotChecks(params.spot_checks, params.environment.is_production, run.operator)
    if not spot.items:
        return spot
    if is_interactive() if interactive is None else interactive:
        return _form(spot, confirmed)
    return _from_parameter(spot, confirmed)


def spot_check_results(spot: SpotChecks) -> Checks:
    """One check per item (plus unknown keys), from what was confirmed so far.

    Unconfirmed: a critical failure in a production role, a warning otherwise.
    """
    if not spot.items:
        return Checks(
            [
                Check(
                    "manual spot checks",
                    SECTION,
                    Status.SKIP,
                    "no manual spot checks configured (spot_checks in the params file)",
                    critical=False,
                )
            ]
        )
    checks = Checks()
    for row in spot.to_records():
        name = f"spot check: {row['item']}"
        if row["confirmed"]:
            evidence = f"checked by {row['by']} at {row['at']} ({row['source']})"
            checks.append(Check(name, SECTION, Status.PASS, evidence, critical=spot.production))
            continue
        how = (
            "tick it in the form above and click Record"
            if spot.widget is not None
            else f"pass spot_checks_confirmed={{'{_key(row['item'])}': '<who checked>'}}"
        )
        role = " (required in production)" if spot.production else ""
        checks.append(
            Check(
                name,
                SECTION,
                Status.FAIL if spot.production else Status.WARN,
                f"not confirmed{role}: {how}",
                critical=spot.production,
            )
        )
    for key in spot.unknown:
        checks.append(
            Check(
                f"spot check {key!r}",
                SECTION,
                Status.WARN,
                f"{key!r} names none of the params' spot checks (a typo?); ignored",
                critical=False,
            )
        )
    return checks


def _key(item: str) -> str:
    tag = _TAG.search(item)
    return tag.group(1).strip() if tag else item
