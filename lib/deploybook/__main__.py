"""``python -m deploybook`` is the CLI."""

from deploybook.ops.cli import main

raise SystemExit(main())
