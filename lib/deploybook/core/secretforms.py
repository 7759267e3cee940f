"""The forms a secret takes once printed: every encoding the scrubber must also mask.

A password reaches a record not only as itself: a URL carries it percent-encoded, a tool
printing JSON escapes its quotes and backslashes, a shell line quotes it, and a pasted
``DATABASE_URL`` whose password was never encoded breaks at its ``/`` or ``@``. Each form
of a registered value is masked like the value itself.
"""

from __future__ import annotations

import json
import re
import shlex
from urllib.parse import quote, quote_plus, unquote

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")
_MIN_PIECE = 6
# Variables whose value is a secret whatever environment declares them.
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|ACCESS_KEY|_KEY$"
    r"|CREDENTIALS?$|DATABASE_URL$|_DSN$|AUTH$)",
    re.IGNORECASE,
)


def encodings(value: str) -> set[str]:
    """``value`` as raw text, URL-encoded, JSON-escaped and shell-quoted (distinct forms)."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    for ensure_ascii in (True, False):
        forms.add(json.dumps(value, ensure_ascii=ensure_ascii)[1:-1])
    quoted = shlex.quote(value)
    forms.add(quoted)
    forms.add(quoted.strip("'"))  # the inside of '...' with '"'"' for each quote
    forms.add(value.replace("\\", "\\\\").replace('"', '\\"'))  # a "double-quoted" shell word
    return {form for form in forms if form}


def url_passwords(value: str) -> set[str]:
    """Each password ``value`` could carry as a URL, however badly it was pasted.

    Read both ways a broken URL can be cut (up to the first and up to the last ``@``), and
    percent-decoded, so the pieces a driver's error prints are known too.
    """
    scheme = _SCHEME.match(value)
    if not scheme:
        return set()
    rest = value[scheme.end() :]
    found: set[str] = set()
    for at in {rest.find("@"), rest.rfind("@")} - {-1}:
        userinfo = rest[:at]
        if ":" not in userinfo:
            continue
        password = userinfo.split(":", 1)[1]
        found |= {password, unquote(password)}
        # The pieces a parser cutting at '/', '@' or whitespace prints apart (long enough
        # not to be mistaken for ordinary words).
        found |= {p for p in re.split(r"[\s/?#@]", password) if len(p) >= _MIN_PIECE}
    return {p for p in found if p}


def is_secret_name(name: str) -> bool:
    """True for a variable whose name says it holds a secret (``*_PASSWORD``, ``*_TOKEN``…)."""
    return bool(SECRET_NAME.search(name))
