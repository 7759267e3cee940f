"""Keep a deploybook process from paying for imports it never uses.

papermill and nbconvert import nbformat, which imports jsonschema, whose format module
imports ``rfc3987_syntax`` when it is installed (jupyter-events pulls it in through
``jsonschema[format-nongpl]``). That package compiles 38 lark grammars at import: ~2.8 s of
CPU on the 2-core machine the rehearsal is timed on, in every `deploybook run`, before its
kernel starts. The grammars serve only jsonschema's optional ``iri``/``iri-reference``
format checks, which no deploybook process asks for (nbformat validates without a format
checker; ``http.expect_schema`` validates in the kernel, which never loads this module).
"""

from __future__ import annotations

import sys

UNUSED = ("rfc3987_syntax",)


def skip_unused() -> None:
    """Mark the unused modules as absent, so an optional ``import`` of them fails fast.

    Only an import that has not happened yet is affected; jsonschema treats the module as not
    installed and leaves the ``iri`` formats unregistered, as it does without the package.
    """
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
