"""Sign-offs and typed confirmations: widgets when a person is there, parameters when not.

How "interactive" is decided — papermill sets no environment variable we can rely on, and
a papermill run *does* have a live kernel, so the kernel alone cannot tell:

1. ``deploybook.session.approvals.HEADLESS = True`` (set by a runner in-process), or the
   environment variable ``DEPLOYBOOK_HEADLESS=1`` (set by the deploybook runner for every
   papermill run), means headless.
2. Otherwise it is interactive only if ``IPython.get_ipython()`` returns a shell with a
   ``kernel`` (JupyterLab, Notebook); a plain Python process or terminal IPython is headless.

Headless runs never wait: sign-offs come from the ``approvals`` parameter and
confirmations from their parameter, and ``input()`` is never called. Interactive runs show
ipywidgets; what was clicked is read when the next cell calls `check_signoffs` or uses the
`Confirmation`, whose output is the record.
"""

from __future__ import annotations

import getpass
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from deploybook.core import render
from deploybook.core.checks import Check, Checks, Status
from deploybook.core.secrets import scrub
from deploybook.core.steps import utcnow
from deploybook.errors import ConfigError
from deploybook.session import answers

SECTION = "18"
HEADLESS = False
_PLACEHOLDERS = {"", "-", "tbd", "todo", "n/a", "na", "none", "null", "?", "xxx"}


# Letters that look like Latin ones (Cyrillic, Greek) and that NFKC leaves alone.
_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁһӏԛԝвкмнтѵοαρνκιτυχ",
    "aeopcyxijsdhlqwbkmhtvoapvkitux",
)
# Blank-looking characters that are not Unicode format characters.
_BLANKS = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"}


def identity(name: str) -> str:
    """Who a typed name denotes, for comparing names: NFKC, case folded, invisible
    characters removed, lookalike letters mapped to Latin, spaces collapsed. So a
    zero-width space, a Cyrillic О or full-width letters do not make another person."""
    text = unicodedata.normalize("NFKC", name or "")
    kept = [
        ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cc", "Co", "Cn")
        and ch not in _BLANKS
        and not 0xFE00 <= ord(ch) <= 0xFE0F
        and not 0xE0100 <= ord(ch) <= 0xE01EF
    ]
    folded = "".join(kept).casefold().translate(_LOOKALIKES)
    return " ".join(folded.split())


def operator_label(operator: str) -> str:
    """The operator as shown everywhere: the OS user, plus the name they gave if another."""
    user = getpass.getuser()
    given = " ".join((operator or "").split())
    return user if not given or identity(given) == identity(user) else f"{user} as {given!r}"


def is_interactive() -> bool:
    """True in a live Jupyter kernel that no runner has marked headless (see module doc)."""
    from deploybook.session.runbook import headless

    return not (HEADLESS or headless())


def _resolve(interactive: bool | None) -> bool:
    return is_interactive() if interactive is None else bool(interactive)


def _clean_name(value: Any) -> str | None:
    """An approver's name, or None when blank or a placeholder such as 'TBD'."""
    if isinstance(value, Mapping):
        value = value.get("name")
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())[:100]
    return None if name.casefold() in _PLACEHOLDERS else name


@dataclass
class SignOff:
    """One role's approval: who, when, and where it came from (parameter or widget)."""

    role: str
    name: str
    at: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SignOffs(list):
    """The sign-offs given so far; in interactive mode it fills when the button is clicked."""

    def __init__(self, items: Iterable[SignOff] = (), *, roles: Iterable[str] = ()) -> None:
        super().__init__(items)
        self.roles = list(roles)
        self.widget: Any = None  # the ipywidgets box, when interactive
        self.operator = ""  # who runs the deployment: OS user plus given name (operator_label)

    def by_role(self) -> dict[str, SignOff]:
        return {s.role.casefold(): s for s in self}

    def get(self, role: str) -> SignOff | None:
        return self.by_role().get(role.casefold())

    def to_records(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self]

    def _repr_html_(self) -> str:
        return render.signoffs_html(self)

    def __repr__(self) -> str:
        return render.signoffs_text(self)


def _from_parameters(roles: list[str], approvals: Mapping[str, Any] | None) -> SignOffs:
    given = {str(k).casefold(): v for k, v in (approvals or {}).items()}
    now = utcnow()
    signoffs = SignOffs(roles=roles)
    for role in roles:
        name = _clean_name(given.pop(role.casefold(), None))
        if name:
            signoffs.append(SignOff(role, scrub(name), now, "parameter"))
    # Roles nobody asked for are kept, so check_signoffs can flag a typo such as "QAA".
    for key, value in (approvals or {}).items():
        if str(key).casefold() in given and (name := _clean_name(value)):
            signoffs.append(SignOff(str(key), scrub(name), now, "parameter"))
    return signoffs


def _signoff_form(roles: list[str], approvals: Mapping[str, Any] | None, operator: str) -> SignOffs:
    """A name box and an "I approve" tick per role; Record copies them into the SignOffs."""
    import ipywidgets as w
    from IPython.display import display

    given = {str(k).casefold(): v for k, v in (approvals or {}).items()}
    signoffs = SignOffs(roles=roles)
    rows: dict[str, tuple[Any, Any]] = {}
    for role in roles:
        name = w.Text(
            value=_clean_name(given.get(role.casefold())) or "",
            placeholder="approver's name",
            description=role,
            style={"description_width": "initial"},  # "Services" is not cut off
        )
        rows[role] = (name, w.Checkbox(value=False, description="I approve", indent=False))
    button = w.Button(
        description="Record sign-offs",
        button_style="primary",
        icon="check",
        layout=w.Layout(width="auto"),
    )
    output = w.Output()
    # A re-run of this cell (Run All) keeps what was recorded before in this kernel.
    key = ("signoffs", tuple(roles), operator)
    for earlier in answers.recall(key, []):
        signoffs.append(earlier)
        name_box, ticked = rows[earlier.role]
        name_box.value, ticked.value = earlier.name, True
    if signoffs:
        with output:
            print(f"Kept from earlier in this session: {', '.join(s.role for s in signoffs)}")

    def record(_button: Any = None) -> None:
        now = utcnow()
        signoffs.clear()
        for role, (name_box, ticked) in rows.items():
            name = _clean_name(name_box.value)
            if ticked.value and name:
                signoffs.append(SignOff(role, scrub(name), now, "widget"))
        answers.remember(key, list(signoffs))
        output.clear_output()
        with output:
            print(f"Recorded at {now} (operator {operator_label(operator)}):")
            for role in roles:
                s = signoffs.get(role)
                print(f"  {role}: {s.name if s else 'NOT signed off'}")

    button.on_click(record)
    signoffs.widget = w.VBox(
        [w.HTML(f"<b>Sign-offs (plan section {SECTION})</b>")]
        + [w.HBox([name, ticked]) for name, ticked in rows.values()]
        + [button, output]
    )
    signoffs.widget.record = record  # for tests and for a runner that pre-fills the form
    signoffs.widget.rows = rows
    display(signoffs.widget)
    return signoffs


def collect_signoffs(
    roles: Iterable[str],
    approvals: Mapping[str, Any] | None,
    operator: str,
    interactive: bool | None = None,
) -> SignOffs:
    """Sign-offs from the ``approvals`` parameter (headless) or from a widget form.

    Headless never waits. Interactive returns at once with an empty `SignOffs` that fills
    when the lead clicks "Record"; the next cell's `check_signoffs` reads it.
    """
    roles = [str(r) for r in roles]
    if not roles:
        raise ConfigError(
            "collect_signoffs: no roles configured (signoff_roles in the params file)"
        )
    if approvals is not None and not isinstance(approvals, Mapping):
        raise ConfigError(
            f"approvals must be a mapping of role to approver name, e.g. "
            f'{{"QA": "Dana Lee"}}; got {type(approvals).__name__}'
        )
    signoffs = (
        _signoff_form(roles, approvals, operator)
        if _resolve(interactive)
        else _from_parameters(roles, approvals)
    )
    signoffs.operator = operator_label(operator)
    return signoffs


def check_signoffs(
    signoffs: SignOffs,
    roles: Iterable[str],
    operator: str,
    require_all: bool,
    require_distinct_approver: bool,
) -> Checks:
    """One check per role (missing, present, or signed by the operator) plus unknown roles."""
    roles = [str(r) for r in roles]
    operator_key = identity(operator)
    operator_keys = {k for k in (operator_key, identity(getpass.getuser())) if k}
    shown = operator_label(operator)
    signers: dict[str, list[str]] = {}
    for role in roles:
        if (s := signoffs.get(role)) is not None:
            signers.setdefault(identity(s.name), []).append(role)
    checks = Checks()
    if require_distinct_approver and not operator_key:
        checks.append(
            Check(
                "operator named",
                SECTION,
                Status.FAIL,
                "the operator parameter is empty, so 'approver is not the operator' cannot be "
                "verified: pass operator='<your name>'",
            )
        )
    for role in roles:
        signoff = signoffs.get(role)
        name = f"sign-off {role}"
        if signoff is None:
            checks.append(
                Check(
                    name,
                    SECTION,
                    Status.FAIL if require_all else Status.WARN,
                    f"no sign-off for {role}: pass approvals={{'{role}': '<name>'}} "
                    "or record it in the sign-off form",
                    critical=require_all,
                )
            )
        elif require_distinct_approver and identity(signoff.name) in operator_keys:
            checks.append(
                Check(
                    name,
                    SECTION,
                    Status.FAIL,
                    f"approver must not be the operator: {role} was signed off by "
                    f"{signoff.name}, who is running this deployment (operator {shown})",
                )
            )
        elif len(shared := signers[identity(signoff.name)]) > 1:
            checks.append(
                Check(
                    name,
                    SECTION,
                    Status.FAIL if require_all else Status.WARN,
                    f"one person may not sign two roles: {signoff.name} signed "
                    f"{' and '.join(shared)}",
                    critical=require_all,
                )
            )
        else:
            same = identity(signoff.name) in operator_keys
            checks.append(
                Check(
                    name,
                    SECTION,
                    Status.PASS,
                    f"approved by {signoff.name} at {signoff.at} ({signoff.source})"
                    + (" — the operator; allowed outside production" if same else ""),
                    critical=require_all,
                )
            )
    expected = {r.casefold() for r in roles}
    for signoff in signoffs:
        if signoff.role.casefold() not in expected:
            checks.append(
                Check(
                    f"sign-off {signoff.role}",
                    SECTION,
                    Status.WARN,
                    f"role {signoff.role!r} is not one of {', '.join(roles)} (a typo?); ignored",
                    critical=False,
                )
            )
    return checks


# --- typed confirmations --------------------------------------------------------------------


class Confirmation:
    """A typed confirmation: true only when what was typed equals the expected text exactly."""

    def __init__(self, prompt: str, expected: str, given: str | None, widget: Any = None) -> None:
        self.prompt = prompt
        self.expected = expected
        self._given = given
        self.widget = widget

    @property
    def given(self) -> str | None:
        if self.widget is not None:
            return self.widget.value
        return self._given

    @property
    def confirmed(self) -> bool:
        given = self.given
        return isinstance(given, str) and given.strip() == self.expected

    def __bool__(self) -> bool:
        return self.confirmed

    def explain(self) -> str:
        given = self.given
        if self.confirmed:
            return f"confirmed: typed {self.expected!r}"
        if given in (None, ""):
            how = "type it in the box" if self.widget is not None else "pass the parameter"
            return f"not confirmed: {self.prompt} — {how} with the exact value {self.expected!r}"
        return f"not confirmed: typed {scrub(given)!r}, expected {self.expected!r}"

    def as_check(self, name: str = "typed confirmation", section: str = "16") -> Check:
        status = Status.PASS if self.confirmed else Status.FAIL
        return Check(name, section, status, self.explain())

    def __repr__(self) -> str:
        return f"Confirmation({self.explain()})"


def confirm(
    prompt: str,
    expected: str,
    given: str | None,
    *,
    interactive: bool | None = None,
) -> Confirmation:
    """Ask the lead to type ``expected`` (e.g. the database name before a restore).

    A ``given`` parameter is always what counts when set; otherwise an interactive kernel
    shows a text box and a headless run is simply not confirmed. ``input()`` is never used.
    """
    if not isinstance(expected, str) or not expected.strip():
        raise ConfigError(f"confirm: nothing to confirm against for {prompt!r}")
    if given is None and _resolve(interactive):
        from deploybook.session.confirm import typed_box

        return typed_box(Confirmation(prompt, expected, None), scrub(prompt))
    return Confirmation(prompt, expected, given)
