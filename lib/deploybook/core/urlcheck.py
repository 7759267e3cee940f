"""Is a database URL well-formed? Answered without ever echoing it.

A password pasted into ``DATABASE_URL`` without percent-encoding (a ``/``, a space, a raw
``@``) makes the URL parse into something else, and the driver's error then prints pieces
of the password. `url_problem` finds such a URL first and says only where it goes wrong.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")
_PORT = re.compile(r"^\d{1,5}$")
# Characters RFC 3986 allows unencoded in a URL's userinfo (besides percent-escapes).
_USERINFO_OK = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:%]*$")


def url_problem(url: str) -> int | None:
    """The 1-based character position where ``url`` stops being a valid URL, or None."""
    scheme = _SCHEME.match(url)
    if not scheme:
        return 1
    for i, ch in enumerate(url):
        if ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F:
            return i + 1
    start = scheme.end()
    rest = url[start:]
    end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
    authority = rest[:end]
    if "@" in rest[end:]:
        # An '@' after the host: a password holding '/', '?' or '#' cut the authority short.
        return start + end + 1
    if authority.count("@") > 1:
        return start + authority.index("@", authority.index("@") + 1) + 1
    userinfo, _, hostport = authority.rpartition("@")
    if userinfo and not _USERINFO_OK.match(userinfo):
        bad = next(i for i, ch in enumerate(userinfo) if not _USERINFO_OK.match(ch))
        return start + bad + 1
    for percent in re.finditer("%", authority):
        if not re.match(r"%[0-9A-Fa-f]{2}", authority[percent.start() :]):
            return start + percent.start() + 1
    if not hostport.startswith("[") and hostport.count(":") == 1:
        port = hostport.split(":", 1)[1]
        if port and not _PORT.match(port):
            return start + len(authority) - len(port) + 1
    return None


def url_message(name: str, url: str) -> str | None:
    """The one message a malformed URL gets (its position, never its content), or None."""
    where = url_problem(url)
    if where is None:
        return None
    return (
        f"{name} is not a valid URL (check that the password is percent-encoded); "
        f"the problem is at character {where} of {len(url)}"
    )
