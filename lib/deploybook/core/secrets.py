"""Secrets come from the process environment only, and never leave it in clear.

`Secret` never shows its value in repr/str/HTML. Every value read through this module is
registered with the scrubber, and `scrub()` is applied to everything the library prints,
logs, stores or sends: it replaces each known value in every encoding it may be printed in
(`secretforms`), and the password inside any URL, with ``***``. Anything cut short is cut
after scrubbing (`shorten`): a secret straddling the cut would no longer match.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deploybook.core.secretforms import encodings, is_secret_name, url_passwords

MASK = "***"

# scheme://user:password@host  -> scheme://user:***@host
# (a password may hold '/': an unencoded one is still masked up to its last '@')
# The scheme is bounded: unbounded, the pattern rescanned every base64 image in a rendered
# record from each of its letters (quadratic; ~0.25 s of a 0.5 MB page, 0.04 s bounded).
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]{0,40}://[^\s:/@'\"]*:)(?P<pw>[^\s@'\"]+)(?=@)"
)
# Values shorter than this are too likely to collide with ordinary text ("1", "true").
_MIN_SCRUB_LENGTH = 4
# A variable registered for its name alone (not declared by any params file) must be longer:
# FEATURE_KEY=true must not mask every "true".
_MIN_NAMED_LENGTH = 8

_known: set[str] = set()
_lock = threading.Lock()


def register(value: str | None) -> None:
    """Remember a secret value so that `scrub` masks it wherever it appears."""
    if not value or len(value) < _MIN_SCRUB_LENGTH:
        return
    # A URL's password is also a secret on its own (it may be printed apart from the URL).
    parts = {value, *url_passwords(value)}
    forms = {form for part in parts for form in encodings(part)}
    with _lock:
        _known.update(form for form in forms if len(form) >= _MIN_SCRUB_LENGTH)


def register_environment(names: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
    """Register the named variables, and every variable whose name says it is a secret.

    Another environment's keys (production's, present in the same process) are secrets
    too, whoever declares them: a build step dumping its environment must not leak them.
    """
    environ = os.environ if environ is None else environ
    for name in names:
        register(environ.get(name))
    register_secret_named(environ)


def register_secret_named(environ: Mapping[str, str] | None = None) -> None:
    """Register each variable named like a secret (``*_PASSWORD``, ``*_TOKEN``, ``*_KEY``…)."""
    environ = os.environ if environ is None else environ
    for name, value in list(environ.items()):
        if is_secret_name(name) and value and len(value) >= _MIN_NAMED_LENGTH:
            register(value)


def known_count() -> int:
    """How many secret values the scrubber knows (for tests and the header)."""
    return len(_known)


def scrub(text: Any) -> Any:
    """Mask every known secret value and every URL password in ``text``.

    Strings are scrubbed; dicts, lists and tuples are scrubbed recursively; anything else
    is returned unchanged.
    """
    if isinstance(text, str):
        with _lock:
            values = sorted(_known, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        if "://" not in text:
            return text
        return _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    if isinstance(text, dict):
        return {scrub(k): scrub(v) for k, v in text.items()}
    if isinstance(text, list | tuple):
        return type(text)(scrub(v) for v in text)
    return text


def shorten(text: str, limit: int, marker: str = "…") -> str:
    """Scrub, then cut to ``limit`` characters: never the other way round."""
    text = scrub(text)
    return text if len(text) <= limit else text[:limit] + marker


@dataclass(frozen=True)
class Secret:
    """A secret read from the environment; shows only its name and whether it is set."""

    name: str
    _value: str | None

    @property
    def is_set(self) -> bool:
        return bool(self._value)

    def reveal(self) -> str:
        """The clear value, for the one call that needs it (a connection, a header)."""
        from deploybook.errors import SecretMissing

        if not self._value:
            raise SecretMissing(
                f"secret {self.name} is not set: export {self.name} in the environment "
                "that runs deploybook (never pass it as a parameter)"
            )
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, {'set' if self.is_set else 'missing'})"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        return f"<code>{self.__repr__()}</code>"


def read_secret(name: str, environ: Mapping[str, str] | None = None) -> Secret:
    """Read one secret by name from the environment and register it with the scrubber."""
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    register(value)
    return Secret(name, value)


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs each record's message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        return True
