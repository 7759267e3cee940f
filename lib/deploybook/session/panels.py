"""Messages, not tracebacks: an expected refusal in a notebook shows as a short red panel.

`install` registers an IPython handler for deploybook's own errors. The cell still ends in
an error (so Run All and papermill stop there, and the reply says which error), but what
the lead reads is the message and what to do; the full traceback is kept in the panel's
output metadata, which is saved in the record, for whoever debugs it later.
"""

from __future__ import annotations

import traceback
from typing import Any

from deploybook.core import render
from deploybook.core.secrets import scrub
from deploybook.errors import DeploybookError


def _handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list:
    from IPython.display import HTML, display

    kind, message = etype.__name__, scrub(str(value))
    todo = getattr(value, "what_to_do", None)
    stack = scrub("".join(traceback.format_exception(etype, value, tb)))
    display(
        HTML(render.refusal_html(kind, message, todo)),
        metadata={"deploybook": {"error": kind, "traceback": stack}},
    )
    # The error itself, one line: Run All stops, papermill names the error from it.
    short = [f"{kind}: {message}"]
    shell._showtraceback(etype, message, short)  # the scrubbed message, never the raw one
    return short


def install() -> None:
    """Show DeploybookError as a panel in this kernel (no-op outside one)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        shell.set_custom_exc((DeploybookError,), _handler)
